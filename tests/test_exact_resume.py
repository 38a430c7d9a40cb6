"""Fault tolerance: a run killed with SIGKILL mid-epoch and resumed with --resume ends with
exactly the weights of an uninterrupted run (--deterministic, CPU); checkpoint files are
replaced atomically."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from shared_setup import ROOT

from kdbench.utils.atomic_io import write_atomically
from kdbench.utils.checkpoint import load_local_checkpoint

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py')
# 3 epochs of 85 iterations (batch 16), a checkpoint per epoch, validation at the end.
OPTIONS = ['train_cfg.max_epochs=3', 'train_cfg.val_interval=3',
           'train_dataloader.batch_size=16', 'default_hooks.checkpoint.max_keep_ckpts=3']


def _command(work_dir, *extra):
    return [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(work_dir),
            '--deterministic', '--seed', '3', *extra, '--cfg-options', *OPTIONS]


def _env():
    return dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1', OMP_NUM_THREADS='1')


def _run(command):
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _weights(path):
    checkpoint = load_local_checkpoint(str(path))
    return checkpoint['state_dict'], checkpoint['optimizer']['state']


@pytest.mark.slow   # trains 3 epochs twice in subprocesses and kills one after a sleep
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    _run(_command(tmp_path / 'whole'))

    killed = tmp_path / 'killed'
    proc = subprocess.Popen(_command(killed), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / 'epoch_2.pth').exists():        # written atomically: complete
        assert proc.poll() is None and time.time() < deadline, 'training ended early'
        time.sleep(0.05)
    time.sleep(0.5)                                      # into epoch 3
    assert proc.poll() is None, 'the run finished before it could be killed'
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / 'epoch_3.pth').exists()

    _run(_command(killed, '--resume'))
    whole_weights, whole_optim = _weights(tmp_path / 'whole' / 'epoch_3.pth')
    resumed_weights, resumed_optim = _weights(killed / 'epoch_3.pth')
    assert whole_weights.keys() == resumed_weights.keys()
    for key, value in whole_weights.items():
        assert torch.equal(value, resumed_weights[key]), key
    for index, state in whole_optim.items():
        assert torch.equal(state['momentum_buffer'], resumed_optim[index]['momentum_buffer'])


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / 'last_checkpoint'
    write_atomically('epoch_1.pth', target)
    assert target.read_text() == 'epoch_1.pth'

    def killed_midway(*args):
        raise KeyboardInterrupt('killed during the rename')
    monkeypatch.setattr(os, 'replace', killed_midway)
    with pytest.raises(KeyboardInterrupt):
        write_atomically('epoch_2.pth' * 1000, target)
    assert target.read_text() == 'epoch_1.pth'
    assert os.listdir(tmp_path) == ['last_checkpoint']       # no temporary file left over


def test_kdbench_checkpoint_saves_are_atomic_and_the_default_backend_is_untouched(tmp_path):
    from mmengine.fileio import get_file_backend
    from mmengine.fileio.backends import LocalBackend

    from kdbench.utils.atomic_io import AtomicLocalBackend, atomic_backend_args
    backend = get_file_backend(str(tmp_path / 'epoch_1.pth'),
                               backend_args=atomic_backend_args())
    backend.put(b'weights', tmp_path / 'sub' / 'epoch_1.pth')
    assert type(backend) is AtomicLocalBackend
    assert (tmp_path / 'sub' / 'epoch_1.pth').read_bytes() == b'weights'
    assert type(get_file_backend(str(tmp_path / 'other.pth'))) is LocalBackend


def _worker_run_cfg(work_dir, **extra):
    """resnet8 on digits, 2 epochs of 6 iterations, 2 persistent loader workers."""
    from kdbench.apis import load_config
    options = {'train_dataloader.num_workers': 2, 'train_dataloader.persistent_workers': True,
               'train_dataloader.batch_size': 16, 'train_cfg.max_epochs': 2,
               'train_cfg.val_interval': 10, 'param_scheduler': [],
               'randomness': dict(seed=5, deterministic=True), 'log_level': 'WARNING',
               'default_hooks.checkpoint.max_keep_ckpts': 2,
               'default_hooks.checkpoint.save_best': None, **extra}
    cfg = load_config(CONFIG, options, str(work_dir))
    cfg.train_dataloader.dataset = dict(type='ClassSubsetDataset', num_classes=10,
                                        fraction=0.08, dataset=cfg.train_dataloader.dataset)
    return cfg


def test_resume_with_persistent_workers_equals_an_uninterrupted_run(tmp_path):
    from kdbench.apis import train
    train(_worker_run_cfg(tmp_path / 'whole'))
    # A fresh Runner resumes from the first epoch's checkpoint (as after a kill in epoch 2).
    train(_worker_run_cfg(tmp_path / 'resumed', resume=True,
                          load_from=str(tmp_path / 'whole' / 'epoch_1.pth')))
    whole_weights, whole_optim = _weights(tmp_path / 'whole' / 'epoch_2.pth')
    resumed_weights, resumed_optim = _weights(tmp_path / 'resumed' / 'epoch_2.pth')
    first, _ = _weights(tmp_path / 'whole' / 'epoch_1.pth')
    assert any(not torch.equal(first[k], v) for k, v in whole_weights.items())
    for key, value in whole_weights.items():
        assert torch.equal(value, resumed_weights[key]), key
    for index, state in whole_optim.items():
        assert torch.equal(state['momentum_buffer'], resumed_optim[index]['momentum_buffer'])
