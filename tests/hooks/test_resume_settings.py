"""--resume honours the run or refuses: optimizer, schedule and batch settings that differ
from the checkpoint's run stop the resume naming each key and both values; --resume-any
resumes with a warning naming the keys whose config value is not used; training longer is
allowed and used. tools/train.py: bare --resume with nothing to resume from stops naming the
work dir; --resume auto starts a new run then."""
import glob
import os
import runpy
import subprocess
import sys
from types import SimpleNamespace

import pytest
from mmengine.config import Config
from shared_setup import ROOT

from kdbench.apis import load_config, train
from kdbench.hooks.resume_check import ResumeMismatchError, allow_any_resume
from kdbench.hooks.resume_settings import UNSET, setting_changes
from kdbench.utils.checkpoint import load_local_checkpoint

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py')
CIFAR = os.path.join(ROOT, 'configs', 'cls', 'resnet8x4_cifar100.py')
# One epoch of resnet8 on digits: a checkpoint (epoch_1.pth) and last_checkpoint.
OPTIONS = {'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1, 'log_level': 'WARNING'}
CLI_OPTIONS = [f'{k}={v}' for k, v in OPTIONS.items()]


def _cfg(work_dir, **options):
    return load_config(CONFIG, dict(OPTIONS, **options), str(work_dir))


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The work dir of a finished one-epoch run."""
    work_dir = tmp_path_factory.mktemp('trained')
    train(_cfg(work_dir))
    return work_dir


def _resume(trained, work_dir, **options):
    cfg = _cfg(work_dir, **options)
    cfg.resume, cfg.load_from = True, str(trained / 'epoch_1.pth')
    return cfg


def _log(work_dir) -> str:
    logs = glob.glob(os.path.join(str(work_dir), '*', '*.log'))
    assert logs, f'no log file in {work_dir}'
    with open(logs[0]) as f:
        return f.read()


# ------------------------------------------------------------------ which keys differ
def _changes(**options):
    saved = load_config(CIFAR)
    return {c.key: c for c in setting_changes(Config.fromstring(saved.pretty_text, '.py'),
                                              load_config(CIFAR, options))}


def test_a_changed_lr_is_named_with_both_values_and_the_checkpoint_wins():
    change = _changes(**{'optim_wrapper.optimizer.lr': 1e6})['optim_wrapper.optimizer.lr']
    assert (change.checkpoint, change.config, change.from_checkpoint) == (0.05, 1e6, True)
    assert change.describe() == ('optim_wrapper.optimizer.lr: checkpoint 0.05, this config '
                                 '1000000.0')


def test_an_unchanged_config_read_back_from_its_text_has_no_changes():
    assert _changes() == {}


@pytest.mark.parametrize('key, value', [
    ('optim_wrapper.optimizer.momentum', 0.5), ('optim_wrapper.clip_grad', dict(max_norm=1)),
    ('optim_wrapper.accumulative_counts', 2), ('param_scheduler.0.milestones', [10, 20]),
    ('param_scheduler.0.gamma', 0.5), ('train_dataloader.batch_size', 32),
    ('auto_scale_lr.enable', True), ('train_cfg.by_epoch', False)])
def test_every_optimizer_schedule_and_batch_key_is_compared(key, value):
    changes = _changes(**{key: value})
    named = [k for k in changes if k == key or k.startswith(key + '.')]
    assert named, changes
    used = key.startswith(('optim_wrapper.clip_grad', 'optim_wrapper.accumulative_counts',
                           'train_dataloader', 'train_cfg'))
    assert all(changes[k].from_checkpoint is not used for k in named)


def test_training_longer_changes_a_scheduler_end_left_to_the_run_length():
    changes = _changes(**{'train_cfg.max_epochs': 300, 'train_cfg.val_interval': 5})
    assert list(changes) == ['param_scheduler.0.end']          # max_epochs itself may change
    end = changes['param_scheduler.0.end']
    assert (end.checkpoint, end.config) == (240, 300)
    assert end.note == 'unset, so train_cfg.max_epochs'
    # Naming the checkpoint's end keeps its schedule: nothing left to refuse.
    assert _changes(**{'train_cfg.max_epochs': 300, 'param_scheduler.0.end': 240}) == {}


def test_a_key_only_one_side_sets_is_a_change():
    change = _changes(**{'optim_wrapper.optimizer.nesterov': True})
    assert change['optim_wrapper.optimizer.nesterov'].checkpoint is UNSET


# --------------------------------------------------------------------- on a real resume
def test_a_changed_lr_is_refused_before_anything_is_loaded(tmp_path, trained):
    cfg = _resume(trained, tmp_path, **{'optim_wrapper.optimizer.lr': 1e6})
    with pytest.raises(ResumeMismatchError) as info:
        train(cfg)
    message = str(info.value)
    assert 'optim_wrapper.optimizer.lr: checkpoint 0.1, this config 1000000.0' in message
    assert '--resume-any' in message and '--work-dir' in message
    assert not glob.glob(str(tmp_path / '*.pth'))


def test_resume_any_resumes_with_the_checkpoints_lr_and_says_so(tmp_path, trained):
    cfg = _resume(trained, tmp_path, **{'optim_wrapper.optimizer.lr': 1e6})
    allow_any_resume(cfg)
    runner = train(cfg)
    saved_lr = load_local_checkpoint(str(trained / 'epoch_1.pth'))['optimizer'][
        'param_groups'][0]['lr']
    assert runner.epoch == 1
    assert [group['lr'] for group in runner.optim_wrapper.param_groups] == [saved_lr]
    log = _log(tmp_path)
    assert 'NOT used' in log and 'optim_wrapper.optimizer.lr (this config 1000000.0' in log


def test_training_longer_is_refused_while_the_schedule_would_not_follow(tmp_path, trained):
    with pytest.raises(ResumeMismatchError, match=r'param_scheduler\.0\.end: checkpoint 1, '
                       r'this config 2 \(unset, so train_cfg\.max_epochs\).*\n.*\n'
                       r"To train longer on the checkpoint's schedule.*"
                       r'param_scheduler\.0\.end=1'):
        train(_resume(trained, tmp_path, **{'train_cfg.max_epochs': 2}))


def test_training_longer_with_the_schedule_named_trains_to_the_new_length(tmp_path, trained):
    runner = train(_resume(trained, tmp_path, **{'train_cfg.max_epochs': 2,
                                                 'param_scheduler.0.end': 1}))
    assert runner.epoch == 2 and os.path.isfile(tmp_path / 'epoch_2.pth')
    assert runner.param_schedulers[0].end == 1


def test_an_unchanged_config_resumes(tmp_path, trained):
    assert train(_resume(trained, tmp_path)).epoch == 1


# -------------------------------------------------------------------- tools/train.py
def _train_tool():
    return SimpleNamespace(**runpy.run_path(os.path.join(ROOT, 'tools', 'train.py')))


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'train.py'), CONFIG,
                           *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT, NO_ALBUMENTATIONS_UPDATE='1'))


def test_bare_resume_with_nothing_to_resume_from_stops_naming_the_work_dir(tmp_path):
    typo = tmp_path / 'wrok_dirs'
    done = _cli('--work-dir', str(typo), '--resume', '--cfg-options', *CLI_OPTIONS)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f'nothing to resume from: the work dir {typo} does not exist' in done.stderr
    assert '--resume auto' in done.stderr and 'Traceback' not in done.stderr
    assert not typo.exists()


def test_resume_options_pick_the_checkpoint(tmp_path):
    tool = _train_tool()
    cfg = _cfg(tmp_path)
    tool.set_resume(cfg, 'auto')                         # nothing there: a new run
    assert not cfg.resume and cfg.load_from is None
    with pytest.raises(SystemExit, match='has no last_checkpoint file'):
        tool.set_resume(_cfg(tmp_path), tool.LATEST)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_3.pth'))
    for value in (tool.LATEST, 'auto'):
        cfg = _cfg(tmp_path)
        tool.set_resume(cfg, value)
        assert cfg.resume and cfg.load_from == str(tmp_path / 'epoch_3.pth')
    cfg = _cfg(tmp_path)
    tool.set_resume(cfg, 'other.pth')
    assert cfg.resume and cfg.load_from == 'other.pth'


def test_resume_with_a_changed_lr_exits_1_naming_the_key(trained):
    done = _cli('--work-dir', str(trained), '--resume', '--cfg-options', *CLI_OPTIONS,
                'optim_wrapper.optimizer.lr=1e6')
    assert done.returncode == 1
    assert 'optim_wrapper.optimizer.lr: checkpoint 0.1, this config 1000000.0' in done.stderr
    assert done.stderr.rstrip().endswith('then replaces the values marked so).')
