"""What a run prints: its first screen says what is trained (the recipe card's short form),
mmengine's environment dump, full config and hook order go to the log file only (or with
--verbose), and a failing run ends with its error."""
import os
import re
import subprocess
import sys
import time

import pytest
from shared_setup import ROOT

from kdbench.apis import KDRunner, load_config
from kdbench.testing import write_random_teacher

KD_FEW = os.path.join('configs', 'demo', 'kd_resnet20_resnet8_fewdigits.py')
SETUP = ('System environment:', 'Hooks will be executed in the following order')
# One epoch of the few-digits task (5 iterations of 32 images), no validation.
ONE_EPOCH = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=2']


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp('teacher') / 'resnet20.pth'
    return write_random_teacher(dict(type='ImageClassifier',
                                     net=dict(type='resnet20', num_classes=10)), str(path))


def _train(work_dir, *options):
    """tools/train.py on the few-digits KD config; ``(exit code, stdout+stderr lines)``."""
    env = dict(os.environ, PYTHONPATH=ROOT, NO_ALBUMENTATIONS_UPDATE='1')
    done = subprocess.run([sys.executable, 'tools/train.py', KD_FEW, '--work-dir', str(work_dir),
                           '--cfg-options', *ONE_EPOCH, *options],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    return done.returncode, done.stdout.splitlines()


def test_the_first_screen_says_what_is_trained_and_the_log_file_has_the_rest(tmp_path, teacher):
    code, lines = _train(tmp_path, f'model.teacher_ckpt={teacher}')
    assert code == 0, '\n'.join(lines[-40:])
    first = '\n'.join(lines[:30])
    for part in (f'Training {KD_FEW}:',
                 'student: ImageClassifier(net=resnet8(10))',
                 'teacher: ImageClassifier(net=resnet20(10))',
                 f'weights: model.teacher_ckpt = {teacher}',
                 'loss: task loss x 0.1; loss_kd: KD(',            # the method and its weight
                 'loss_weight=0.9', 'temperature=4.0',
                 'train data: ClassSubsetDataset(num_classes=10, fraction=0.1) of '
                 'DigitsDataset(split=train)',
                 'Effective batch size 32 = 32 per process x 1 processes; '
                 'lr as configured, used at batch 32.',
                 'length: 1 epochs',
                 'optimizer: SGD, lr 0.05 (student); schedule: CosineAnnealingLR',
                 f'work dir: {tmp_path}'):
        assert part in first, first
    assert 'Epoch(train) [1][5/5]' in '\n'.join(lines)
    output = '\n'.join(lines)
    assert not any(marker in output for marker in SETUP)
    assert 'auto_scale_lr = dict(' not in output                    # no config dump
    log_file = re.search(r'log file: (\S+\.log)', first).group(1)
    assert os.path.dirname(os.path.dirname(log_file)) == str(tmp_path)
    with open(log_file) as f:
        log = f.read()
    for marker in (*SETUP, 'Config:', f"teacher_ckpt='{teacher}'", f'Training {KD_FEW}:'):
        assert marker in log


def _ends_with_the_error(lines, *needles):
    """The output ends with a traceback (no log line after it) whose last lines hold
    ``needles``."""
    start = max(i for i, line in enumerate(lines) if line.startswith('Traceback'))
    assert not any(' - mmengine - ' in line for line in lines[start:]), lines[start:]
    end = '\n'.join(lines[-3:])
    assert all(needle in end for needle in needles), end


def test_a_failing_run_ends_with_its_error(tmp_path, teacher):
    code, lines = _train(tmp_path / 'nan', f'model.teacher_ckpt={teacher}',
                         'model.methods.kd.loss_weight=nan')
    assert code != 0
    _ends_with_the_error(lines, 'NonFiniteLossError: Non-finite loss at iteration 1',
                         'loss_kd = nan')
    with open(teacher, 'rb') as f:                  # found by the preflight, unreadable later
        (tmp_path / 'cut.pth').write_bytes(f.read(1000))
    code, lines = _train(tmp_path / 'cut', f'model.teacher_ckpt={tmp_path / "cut.pth"}')
    assert code != 0
    _ends_with_the_error(lines, str(tmp_path / 'cut.pth'))


@pytest.mark.parametrize('verbose', [False, True])
def test_the_runner_prints_its_set_up_only_when_verbose(tmp_path, capsys, verbose):
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py'),
                      work_dir=str(tmp_path))
    cfg.experiment_name = f'set_up_log_verbose_{verbose}'
    if verbose:
        cfg.verbose_log = True
    runner = KDRunner.from_cfg(cfg)
    printed = capsys.readouterr().out
    assert all((marker in printed) == verbose for marker in SETUP), printed
    with open(runner.logger.log_file) as f:
        log = f.read()
    assert all(marker in log for marker in SETUP)
    runner.logger.info('after the set-up')                      # the console shows INFO again
    assert 'after the set-up' in capsys.readouterr().out


def test_tools_take_verbose():
    from kdbench.apis.cli import config_from_args, tool_parser
    parser = tool_parser('doc', 'work dir')
    config = os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py')
    assert config_from_args(parser.parse_args([config, '--verbose'])).verbose_log is True
    assert 'verbose_log' not in config_from_args(parser.parse_args([config]))


def test_runners_of_one_experiment_name_keep_their_own_logger_and_message_hub(
        tmp_path, monkeypatch):
    """mmengine names a runner's logger and message hub after its experiment name and a
    timestamp: two runners built in the same second (the clock is held still here) would
    share them."""
    monkeypatch.setattr(time, 'time', lambda: 1.7e9)
    runners = []
    for name in ('a', 'b'):
        cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py'),
                          work_dir=str(tmp_path / name))
        cfg.experiment_name = 'same_name'
        runners.append(KDRunner.from_cfg(cfg))
    first, second = runners
    assert first.logger is not second.logger
    assert first.message_hub is not second.message_hub
    assert second.experiment_name.startswith(first.experiment_name)
    for name, runner in zip('ab', runners):
        assert runner.logger.log_file.startswith(str(tmp_path / name))
        assert os.path.isfile(runner.logger.log_file)
