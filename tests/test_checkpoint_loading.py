"""Checkpoint loading is scoped to the files the user names: importing kdbench changes no
global behaviour, Runner checkpoints load weights-only with mmengine's classes allow-listed,
other objects are refused naming the file unless the user consents (then they load with a
warning naming the file), and damaged files are named as such."""
import json
import logging
import os
import pickle
import subprocess
import sys

import pytest
import torch
from mmengine.logging import MMLogger
from shared_setup import ROOT

from kdbench.utils.checkpoint import (CorruptCheckpointError, UntrustedCheckpointError,
                                      _history_buffer_attr, load_local_checkpoint,
                                      trusted_checkpoints)
from kdbench.utils.weights import load_task_weights


_SNAPSHOT = '''
import inspect, json, sys, torch
import torch._dynamo, torch.distributed.tensor  # noqa  (torch allow-lists its own classes)
from mmengine.fileio.backends import registry_utils as fb
from mmengine.runner.checkpoint import CheckpointLoader
def snap():
    return dict(
        schemes={k: f'{v.__module__}.{v.__qualname__}' for k, v in CheckpointLoader._schemes.items()},
        backends={k: v.__name__ for k, v in fb.backends.items()},
        prefixes={k: v.__name__ for k, v in fb.prefix_to_backends.items()},
        safe_globals=sorted(map(str, torch.serialization.get_safe_globals())),
        load=[f'{torch.load.__module__}.{torch.load.__qualname__}',
              str(inspect.signature(torch.load))])
before = snap()
import kdbench, kdbench.apis, kdbench.distill, kdbench.hooks  # noqa
import tasks.classification, tasks.segmentation  # noqa
print(json.dumps(dict(before=before, after=snap())))
'''


def test_importing_kdbench_changes_no_global_behaviour():
    env = dict(os.environ, PYTHONPATH=ROOT, NO_ALBUMENTATIONS_UPDATE='1')
    done = subprocess.run([sys.executable, '-c', _SNAPSHOT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads(done.stdout.strip().splitlines()[-1])
    assert state['after'] == state['before']


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    handler = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def _runner_like_checkpoint(path):
    """What an mmengine Runner checkpoint holds besides tensors: the message hub's
    HistoryBuffer (with its statistics methods) and numpy arrays and scalars."""
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub('ck-test')
    hub.update_scalar('train/loss', 1.5)
    torch.save(dict(state_dict={'w': torch.ones(2)}, message_hub=hub.state_dict(),
                    meta=dict(seed=np.int64(3), state=np.random.RandomState(0).get_state())),
               path)


def test_runner_checkpoints_load_weights_only_without_warning(tmp_path, monkeypatch,
                                                              warnings_logged):
    path = tmp_path / 'iter_1.pth'
    _runner_like_checkpoint(path)
    calls, real = [], torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: calls.append(k['weights_only'])
                        or real(*a, **k))
    before = set(map(str, torch.serialization.get_safe_globals()))
    checkpoint = load_local_checkpoint(str(path))
    assert calls == [True] and not warnings_logged
    assert checkpoint['message_hub']['log_scalars']['train/loss'].current() == 1.5
    assert set(map(str, torch.serialization.get_safe_globals())) == before   # scoped
    with pytest.raises(pickle.UnpicklingError):                  # no blanket getattr
        _history_buffer_attr(os, 'system')


class Custom:
    """A class no weights-only load accepts."""


def test_other_objects_are_refused_and_load_with_consent_and_one_warning(
        tmp_path, warnings_logged):
    path = tmp_path / 'custom.pth'
    torch.save(dict(state_dict={'w': torch.ones(2)}, extra=Custom()), path)
    with pytest.raises(UntrustedCheckpointError) as refused:
        load_local_checkpoint(str(path))
    assert f"'{path}'" in str(refused.value) and 'test_checkpoint_loading.Custom' in \
        str(refused.value) and '--trust-checkpoint' in str(refused.value)
    assert 'trust_checkpoint = True' in str(refused.value) and not warnings_logged
    checkpoint = load_local_checkpoint(str(path), trust=True)
    assert isinstance(checkpoint['extra'], Custom)
    assert len(warnings_logged) == 1
    assert str(path) in warnings_logged[0] and 'weights_only=False' in warnings_logged[0]
    assert 'Custom' in warnings_logged[0]
    with trusted_checkpoints(True):                 # a run's consent, for the block only
        assert isinstance(load_local_checkpoint(str(path))['extra'], Custom)
        assert isinstance(load_local_checkpoint(str(path), trust=True)['extra'], Custom)
        with pytest.raises(UntrustedCheckpointError):
            load_local_checkpoint(str(path), trust=False)
    with pytest.raises(UntrustedCheckpointError):
        load_local_checkpoint(str(path))


def _truncated(tmp_path, tiny_classifier_cfg, teacher_ckpt):
    path = teacher_ckpt(tiny_classifier_cfg('resnet8'))
    data = open(path, 'rb').read()
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(data[:len(data) // 2])
    return cut


def test_truncated_teacher_checkpoint_is_named(tmp_path, tiny_classifier_cfg, teacher_ckpt):
    from kdbench.registry import MODELS
    cut = _truncated(tmp_path, tiny_classifier_cfg, teacher_ckpt)
    cfg = tiny_classifier_cfg('resnet8')
    with pytest.raises(CorruptCheckpointError, match=rf"'{cut}' is truncated or corrupt"):
        MODELS.build(dict(type='Distiller', student=cfg, teacher=cfg, teacher_ckpt=str(cut),
                          methods=dict(kd=dict(type='KD'))))
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(CorruptCheckpointError, match='empty.pth.*truncated or corrupt'):
        load_task_weights(MODELS.build(cfg), str(empty))


def test_truncated_resume_checkpoint_is_named(tmp_path, tiny_classifier_cfg, teacher_ckpt):
    from kdbench.apis import KDRunner, load_config
    cut = _truncated(tmp_path, tiny_classifier_cfg, teacher_ckpt)
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py'),
                      dict(log_level='WARNING'), str(tmp_path / 'work'))
    cfg.resume, cfg.load_from = True, str(cut)
    runner = KDRunner.from_cfg(cfg)
    with pytest.raises(CorruptCheckpointError, match=rf"'{cut}' is truncated or corrupt"):
        runner.load_or_resume()


def test_kdbench_runner_writes_its_checkpoints_atomically(tmp_path, monkeypatch):
    from kdbench.apis import load_config, train
    from kdbench.utils import atomic_io
    written = []
    monkeypatch.setattr(atomic_io.AtomicLocalBackend, 'put', lambda self, obj, path: (
        written.append(os.path.basename(path)), atomic_io.write_atomically(obj, path)))
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py'),
                      dict(log_level='WARNING'), str(tmp_path))
    cfg.train_cfg = dict(by_epoch=False, max_iters=1, val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=1)
    train(cfg)
    assert written == ['iter_1.pth'] and (tmp_path / 'iter_1.pth').is_file()
