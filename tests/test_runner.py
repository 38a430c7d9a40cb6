"""End-to-end Runner runs on the embedded digits data: 2-iteration training per method,
resume from a checkpoint, and evaluation of a distilled student without its teacher."""
import os
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from shared_setup import ROOT, shrink_to_iterations

from kdbench.apis import KDRunner, enable_amp, evaluate, load_config, train
from kdbench.distill import registered_methods
from kdbench.registry import HOOKS
from kdbench.utils.checkpoint import load_local_checkpoint

DEMO = os.path.join(ROOT, 'configs', 'demo')
QUIET = dict(log_level='WARNING')
# The digits configs of every registered method that has one, and their loss terms.
METHOD_CONFIGS = [(f'{e.config_prefix}_resnet20_resnet8_digits.py',
                   {'loss_cls', f'loss_{e.config_prefix}'}) for e in registered_methods()]
METHOD_CONFIGS = [(c, losses) for c, losses in METHOD_CONFIGS
                  if os.path.isfile(os.path.join(DEMO, c))]


def _iter_cfg(config, work_dir, max_iters=2, **options):
    """A demo config shortened to ``max_iters`` iterations, checkpointing every one."""
    cfg = load_config(os.path.join(DEMO, config), dict(QUIET, **options), str(work_dir))
    cfg.train_dataloader.batch_size = 16
    return shrink_to_iterations(cfg, max_iters, checkpoint_interval=1)


@pytest.fixture(scope='module')
def digits_teacher(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('teacher')
    train(_iter_cfg('resnet20_digits.py', work_dir))
    return str(work_dir / 'iter_2.pth')


def test_the_digits_configs_cover_at_least_the_first_four_methods():
    assert [c for c, _ in METHOD_CONFIGS][:4] == [
        f'{m}_resnet20_resnet8_digits.py' for m in ('kd', 'at', 'cat_kd', 'tat')]


@pytest.mark.parametrize('config, losses',
                         [('resnet8_digits.py', {'loss_cls'}), *METHOD_CONFIGS])
def test_two_iterations_train_and_validate(tmp_path, digits_teacher, config, losses):
    cfg = _iter_cfg(config, tmp_path, **{'model.teacher_ckpt': digits_teacher}
                    if config != 'resnet8_digits.py' else {})
    runner = train(cfg)
    logged = {k[len('train/'):] for k in runner.message_hub.log_scalars if k.startswith('train/')}
    assert losses <= logged
    for name in losses:
        value = runner.message_hub.get_scalar(f'train/{name}').current()
        assert torch.isfinite(torch.tensor(value))
    assert 0 <= runner.message_hub.get_scalar('val/accuracy/top1').current() <= 100
    saved = load_local_checkpoint(str(tmp_path / 'iter_2.pth'))['state_dict']
    assert not any(k.startswith('teacher.') for k in saved)


def test_distiller_checkpoint_keeps_teacher_frozen(tmp_path, digits_teacher):
    cfg = _iter_cfg('kd_resnet20_resnet8_digits.py', tmp_path,
                    **{'model.teacher_ckpt': digits_teacher})
    runner = train(cfg)
    teacher = load_local_checkpoint(digits_teacher)['state_dict']
    for key, value in runner.model.teacher.state_dict().items():
        torch.testing.assert_close(value, teacher[key], msg=key)


def test_resume_continues_from_last_checkpoint(tmp_path, digits_teacher):
    options = {'model.teacher_ckpt': digits_teacher}
    train(_iter_cfg('kd_resnet20_resnet8_digits.py', tmp_path, max_iters=2, **options))
    saved = load_local_checkpoint(str(tmp_path / 'iter_2.pth'))

    cfg = _iter_cfg('kd_resnet20_resnet8_digits.py', tmp_path, max_iters=3, **options)
    cfg.resume = True      # what tools/train.py --resume sets: latest checkpoint of work_dir
    runner = KDRunner.from_cfg(cfg)
    runner.load_or_resume()
    assert runner.iter == 2
    for key, value in runner.model.state_dict().items():
        torch.testing.assert_close(value, saved['state_dict'][key], msg=key)
    momentum = runner.optim_wrapper.optimizer.state_dict()['state']
    torch.testing.assert_close(momentum, saved['optimizer']['state'])
    runner.train()
    assert runner.iter == 3
    assert os.path.isfile(tmp_path / 'iter_3.pth')


def test_evaluate_distilled_student_without_teacher(tmp_path, digits_teacher):
    cfg = _iter_cfg('kd_resnet20_resnet8_digits.py', tmp_path,
                    **{'model.teacher_ckpt': digits_teacher})
    runner = train(cfg)
    val_top1 = runner.message_hub.get_scalar('val/accuracy/top1').current()
    # The teacher checkpoint is gone: evaluation must not build or load the teacher.
    eval_cfg = load_config(os.path.join(DEMO, 'kd_resnet20_resnet8_digits.py'),
                           dict(QUIET, **{'model.teacher_ckpt': str(tmp_path / 'absent.pth')}),
                           str(tmp_path / 'eval'))
    metrics = evaluate(eval_cfg, str(tmp_path / 'iter_2.pth'))
    assert metrics['accuracy/top1'] == pytest.approx(val_top1)
    # ... and the same checkpoint evaluates under the plain student config.
    plain = load_config(os.path.join(DEMO, 'resnet8_digits.py'), QUIET, str(tmp_path / 'eval2'))
    assert evaluate(plain, str(tmp_path / 'iter_2.pth')) == metrics


def test_tools_train_then_test_cli(tmp_path, digits_teacher):
    env = dict(os.environ, PYTHONPATH=ROOT)
    common = ['--cfg-options', f'model.teacher_ckpt={digits_teacher}', 'log_level=WARNING',
              'train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
    subprocess.run([sys.executable, 'tools/train.py', 'configs/demo/kd_resnet20_resnet8_digits.py',
                    '--work-dir', str(tmp_path), '--seed', '3', *common],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    assert os.path.isfile(tmp_path / 'epoch_1.pth')
    out = subprocess.run([sys.executable, 'tools/test.py', 'configs/demo/resnet8_digits.py',
                          str(tmp_path / 'epoch_1.pth'), '--work-dir', str(tmp_path / 'test')],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert '"accuracy/top1"' in out.stdout


def test_tools_train_reports_missing_teacher(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/demo/kd_resnet20_resnet8_digits.py',
         '--work-dir', str(tmp_path), '--cfg-options', 'model.teacher_ckpt=/no/such/teacher.pth'],
        cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0        # the preflight names the key before any Runner
    assert 'model.teacher_ckpt: file not found: /no/such/teacher.pth' in result.stderr


def test_misspelt_method_argument_is_named(tmp_path, digits_teacher):
    cfg = _iter_cfg('kd_resnet20_resnet8_digits.py', tmp_path,
                    **{'model.teacher_ckpt': digits_teacher,
                       'model.methods.kd.temprature': 2.0})
    with pytest.raises(TypeError, match='temprature'):
        train(cfg)


def test_cat_only_trains_from_cams_alone(tmp_path, digits_teacher):
    cfg = _iter_cfg('cat_kd_resnet20_resnet8_digits.py', tmp_path,
                    **{'model.teacher_ckpt': digits_teacher, 'model.student_loss_weight': 0.0})
    runner = train(cfg)
    assert runner.message_hub.get_scalar('train/loss_cls').current() == 0.0
    assert runner.message_hub.get_scalar('train/loss_cat_kd').current() > 0.0
    before = load_local_checkpoint(str(tmp_path / 'iter_1.pth'))['state_dict']
    after = load_local_checkpoint(str(tmp_path / 'iter_2.pth'))['state_dict']
    assert 'student.net.fc.bias' not in after
    assert not torch.equal(before['student.net.fc.weight'], after['student.net.fc.weight'])


@pytest.mark.parametrize('config, losses', METHOD_CONFIGS)
def test_amp_on_cpu_runs_every_method_in_bfloat16(tmp_path, digits_teacher, config, losses):
    cfg = _iter_cfg(config, tmp_path, **{'model.teacher_ckpt': digits_teacher})
    enable_amp(cfg)
    assert cfg.optim_wrapper.type == 'AutocastOptimWrapper'
    RecordConvDtype.seen.clear()
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(type='RecordConvDtype')]
    runner = train(cfg)
    assert RecordConvDtype.seen == [torch.bfloat16] * 2         # the student ran in bf16
    for name in losses:
        assert torch.isfinite(torch.tensor(runner.message_hub.get_scalar(
            f'train/{name}').current()))


@HOOKS.register_module(force=True)
class RecordConvDtype(Hook):
    """Test hook: records the output dtype of the student's first conv in training."""

    seen = []

    def before_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        conv = next(m for m in model.student.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_hook(
            lambda module, args, out: self.seen.append(out.dtype) if module.training else None)
