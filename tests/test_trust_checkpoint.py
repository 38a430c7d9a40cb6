"""Loading is safe by default: a checkpoint that needs more than a weights-only load is
refused (naming the file and the object) unless the user consents with --trust-checkpoint
or ``trust_checkpoint = True``; kdbench's own run checkpoints and the released teachers'
layout load without it; downloads are never trusted for being named and must match the
hash in their file name."""
import argparse
import hashlib
import os
import runpy
import shutil
import sys
import warnings

import pytest
import torch
from shared_setup import ROOT, shrink_to_iterations

from kdbench.apis import KDRunner, load_config, train
from kdbench.apis.overrides import UnknownConfigKeyWarning
from kdbench.registry import MODELS
from kdbench.utils import weights as W
from kdbench.utils.checkpoint import (CorruptCheckpointError, UntrustedCheckpointError,
                                      load_local_checkpoint)

DEMO = os.path.join(ROOT, 'configs', 'demo')
QUIET = dict(log_level='WARNING')
RESNET8 = dict(type='ImageClassifier', net=dict(type='resnet8', num_classes=10))
#: What old training scripts pickle beside the weights (their command-line arguments): a
#: class the weights-only load refuses, importable in any process.
ARGS = 'argparse.Namespace'


def _with_args(path, state):
    """A checkpoint holding ``state`` and the training script's argparse Namespace."""
    torch.save(dict(state_dict=state, args=argparse.Namespace(lr=0.1)), path)
    return str(path)


def _refusal(path):
    return rf"Refusing to load checkpoint '{path}': it holds {ARGS}.*--trust-checkpoint"


def test_kdbench_run_checkpoints_and_released_teachers_load_without_consent(
        tmp_path, teacher_ckpt):
    teacher = teacher_ckpt(dict(RESNET8, net=dict(type='resnet20', num_classes=10)))
    cfg = load_config(os.path.join(DEMO, 'kd_resnet20_resnet8_digits.py'),
                      dict(QUIET, **{'model.teacher_ckpt': teacher}), str(tmp_path / 'kd'))
    cfg.train_dataloader.batch_size = 16
    train(shrink_to_iterations(cfg, 1, checkpoint_interval=1))
    checkpoint = load_local_checkpoint(str(tmp_path / 'kd' / 'iter_1.pth'), trust=False)
    assert {'meta', 'state_dict', 'optimizer', 'message_hub'} <= set(checkpoint)
    # The released teachers' layout, in torch's legacy (pre-1.6, non-zip) format too.
    model = MODELS.build(RESNET8)
    for legacy in (False, True):
        path = tmp_path / f'ckpt_epoch_240_{legacy}.pth'
        torch.save(dict(epoch=240, model=model.net.state_dict(), accuracy=75.6,
                        optimizer=dict(state={}, param_groups=[dict(lr=0.0, params=[0])])),
                   path, _use_new_zipfile_serialization=not legacy)
        W.load_task_weights(MODELS.build(RESNET8), str(path), trust=False)


def test_the_runner_refuses_a_teacher_and_load_from_unless_the_config_consents(
        tmp_path, teacher_ckpt):
    teacher = _with_args(tmp_path / 'teacher.pth', torch.load(teacher_ckpt(dict(
        RESNET8, net=dict(type='resnet20', num_classes=10))), weights_only=True)['state_dict'])
    student = _with_args(tmp_path / 'student.pth', MODELS.build(RESNET8).state_dict())
    options = dict(QUIET, **{'model.teacher_ckpt': teacher})
    config = os.path.join(DEMO, 'kd_resnet20_resnet8_digits.py')
    with pytest.raises(UntrustedCheckpointError, match=_refusal(teacher)):
        KDRunner.from_cfg(load_config(config, options, str(tmp_path / 'refused')))
    with warnings.catch_warnings():        # the key passes the strict config check
        warnings.simplefilter('error', UnknownConfigKeyWarning)
        cfg = load_config(config, dict(options, trust_checkpoint=True), str(tmp_path / 'ok'),
                          strict=True)
    runner = KDRunner.from_cfg(cfg)
    expected = torch.load(teacher, weights_only=False)['state_dict']
    for key, value in runner.model.teacher.state_dict().items():
        assert torch.equal(value, expected[key]), key
    runner.load_checkpoint(student)                               # load_from, consented
    plain = KDRunner.from_cfg(load_config(os.path.join(DEMO, 'resnet8_digits.py'), QUIET,
                                          str(tmp_path / 'plain')))
    with pytest.raises(UntrustedCheckpointError, match=_refusal(student)):
        plain.load_checkpoint(student)


def _tool(monkeypatch, script, *args, run_name='__main__'):
    """Run ``tools/<script>`` in this process as ``python tools/<script> ARGS``; returns
    its globals."""
    monkeypatch.setattr(sys, 'argv', [script, *map(str, args)])
    monkeypatch.chdir(ROOT)
    return runpy.run_path(os.path.join(ROOT, 'tools', script), run_name=run_name)


def test_tools_refuse_without_and_load_with_trust_checkpoint(tmp_path, monkeypatch, capsys):
    torch.manual_seed(0)
    model = MODELS.build(RESNET8)
    checkpoint = _with_args(tmp_path / 'epoch_1.pth', model.state_dict())
    test = ['test.py', 'configs/demo/resnet8_digits.py', checkpoint, '--work-dir',
            tmp_path / 'test', '--cfg-options', 'log_level=WARNING']
    with pytest.raises(UntrustedCheckpointError, match=_refusal(checkpoint)):
        _tool(monkeypatch, *test)
    _tool(monkeypatch, *test, '--trust-checkpoint')
    assert '"accuracy/top1"' in capsys.readouterr().out
    with pytest.raises(UntrustedCheckpointError, match=_refusal(checkpoint)):
        _tool(monkeypatch, 'export_student.py', checkpoint, tmp_path / 'student.pth')
    _tool(monkeypatch, 'export_student.py', checkpoint, tmp_path / 'student.pth',
          '--trust-checkpoint')
    exported = torch.load(tmp_path / 'student.pth', weights_only=True)
    assert all(torch.equal(v, exported[k[len('net.'):]])
               for k, v in model.state_dict().items())
    # tools/train.py: the teacher is refused; the option sets the config key.
    teacher = ['configs/demo/kd_resnet20_resnet8_digits.py', '--work-dir', tmp_path / 'train',
               '--cfg-options', 'log_level=WARNING', f'model.teacher_ckpt={checkpoint}']
    with pytest.raises(UntrustedCheckpointError, match=_refusal(checkpoint)):
        _tool(monkeypatch, 'train.py', *teacher)
    tool = _tool(monkeypatch, 'train.py', *teacher, '--trust-checkpoint', run_name='tool')
    assert tool['config_from_args'](tool['parse_args']()).trust_checkpoint is True
    for script, positional in (('explain.py', 2), ('visualize_cams.py', 4)):
        tool = _tool(monkeypatch, script, *['x'] * positional, '--trust-checkpoint',
                     run_name='tool')
        assert tool['parse_args']().trust_checkpoint is True


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache under tmp_path; downloads copy from ``sources``."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    folder = tmp_path / 'torch' / 'hub' / 'checkpoints'
    folder.mkdir(parents=True)
    sources = {}
    monkeypatch.setattr(W, 'download_url_to_file',
                        lambda url, path, progress=True: shutil.copy(sources[url], path))
    return folder, sources


def test_downloads_must_match_the_hash_in_their_name(hub, tmp_path):
    folder, sources = hub
    model = MODELS.build(RESNET8)
    source = tmp_path / 'weights.pth'
    torch.save(model.state_dict(), source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    url = f'https://example.org/models/resnet8-{digest[:10]}.pth'
    sources[url] = source
    W.load_task_weights(MODELS.build(RESNET8), url, trust=False)      # downloaded, checked
    W.load_task_weights(MODELS.build(RESNET8), url, trust=False)      # cached, checked
    cached = folder / f'resnet8-{digest[:10]}.pth'
    torch.save(MODELS.build(RESNET8).state_dict(), cached)            # another file
    with pytest.raises(CorruptCheckpointError,
                       match=rf"'{cached}' does not match the hash in its name.*Delete it"):
        W.load_task_weights(MODELS.build(RESNET8), url, trust=True)
    cached.unlink()
    sources[url] = cached.parent / 'other.pth'                        # a bad download
    torch.save({'x': torch.ones(1)}, sources[url])
    with pytest.raises(CorruptCheckpointError, match='does not match the hash in its name'):
        W.load_named_weights(url)
    # torchvision's names carry the hash too (and mmengine's old modelzoo:// name).
    fake = folder / 'resnet18-f37072fd.pth'
    torch.save({'x': torch.ones(1)}, fake)
    for name in ('torchvision://resnet18', 'modelzoo://resnet18'):
        with pytest.raises(CorruptCheckpointError, match=rf"'{fake}' does not match"):
            W.load_named_weights(name)


def test_a_named_download_is_not_trusted_implicitly(hub, tmp_path):
    folder, sources = hub
    url = 'https://example.org/models/with_args.pth'
    sources[url] = _with_args(tmp_path / 'with_args.pth', MODELS.build(RESNET8).state_dict())
    cached = folder / 'with_args.pth'
    with pytest.raises(UntrustedCheckpointError, match=_refusal(cached)):
        W.load_named_weights(url)
    assert 'args' in W.load_named_weights(url, trust=True)
    runner = KDRunner.from_cfg(load_config(os.path.join(DEMO, 'resnet8_digits.py'), QUIET,
                                           str(tmp_path / 'run')))
    with pytest.raises(UntrustedCheckpointError, match=_refusal(cached)):
        runner.load_checkpoint(url)                         # load_from=URL: the same rule
    with pytest.raises(UntrustedCheckpointError, match="mmcls://resnet18.*--trust-checkpoint"):
        W.load_named_weights('mmcls://resnet18')             # mmengine unpickles these
