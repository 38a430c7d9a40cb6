"""tools/gpu_check.py in its CPU smoke form: report contents (JSON and Markdown), a failing
case's non-zero exit, the first-step loss probe, the scaler-skip count, and (slow) every
case of both tasks plus the torchrun launchers through the command line."""
import json
import os
import runpy
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import DefaultScope
from torch import nn
from shared_setup import ROOT, registered_method

from kdbench.benchmark import gpu_check, gpu_report, overhead
from kdbench.distill.kd import KD
from kdbench.distill.table import registered_methods
from kdbench.registry import DISTILL_METHODS
from kdbench.testing import Shape, TeacherCheckpoints


def load_tool() -> SimpleNamespace:
    """tools/gpu_check.py's functions (``main``), without running it as a script."""
    return SimpleNamespace(**runpy.run_path(os.path.join(ROOT, 'tools', 'gpu_check.py')))


@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    """CIFAR KD in fp32 and AMP plus channels_last, without the launchers (seconds)."""
    out = tmp_path_factory.mktemp('gpu_check')
    code = load_tool().main(['--smoke', '--tasks', 'cifar', '--methods', 'KD', '--variants',
                             'channels_last', '--no-launchers', '--out', str(out)])
    with open(out / 'gpu_check.json') as f:
        report = json.load(f)
    return code, report, (out / 'gpu_check.md').read_text()


def test_smoke_passes_and_records_every_check(smoke):
    code, report, _ = smoke
    assert code == 0 and report['passed'] and report['failed'] == []
    env = report['environment']
    assert env['torch'] == torch.__version__ and env['device'] == overhead.machine()
    assert env['commit'] and 'cudnn' in env and env['packages']['mmengine']
    assert report['smoke'] and report['settings']['steps'] == 2
    cases = report['cases']
    assert [(c['task'], c['method'], c['case']) for c in cases] == [
        ('cifar', 'KD', 'fp32'), ('cifar', 'KD', 'amp'), ('cifar', 'KD', 'channels_last')]
    fp32, amp, last = cases
    assert fp32['config'] == 'configs/cls/kd_resnet32x4_resnet8x4_cifar100.py'
    assert (fp32['batch'], fp32['input_size']) == (4, 32)
    assert amp['options'] == dict(amp=True) and amp['precision'] == 'bfloat16'
    assert last['options'] == dict(channels_last=True) and last['precision'] == 'float32'
    for c in cases:
        assert c['status'] == 'ok' and c['failures'] == []
        assert len(c['losses']) == 2 and c['losses_finite'] and c['params_finite']
        assert set(c['first_losses']) == {'loss', 'loss_cls', 'loss_kd'}
        assert c['images_per_s'] > 0
        assert c['peak_mem_bytes'] is None and 'CPU' in c['memory_method']
        assert c['scaler_skips_after_warmup'] is None     # no loss scaling on CPU
    assert fp32['first_loss_rel_diff'] is None
    assert 0 < amp['first_loss_rel_diff'] <= gpu_check.TOLERANCES['bfloat16']
    assert last['first_loss_rel_diff'] <= gpu_check.TOLERANCES['float32']
    for c in (fp32, amp):
        assert c['overhead']['ratio']['median'] > 0
        assert set(c['overhead']['median_s']) == set(overhead.PHASES)
    assert last['overhead'] is None and report['launchers'] is None


def test_markdown_has_a_row_per_case(smoke):
    _, report, text = smoke
    assert text.startswith('GPU check (smoke, PASSED)')
    rows = [line for line in text.splitlines() if line.startswith('| cifar |')]
    assert len(rows) == len(report['cases'])
    assert rows[1].startswith('| cifar | KD | amp | 4, 32 | bfloat16 |')
    assert 'Launchers' not in text


@pytest.mark.slow
def test_a_nan_case_fails_with_a_non_zero_exit(tmp_path, monkeypatch):
    forward = KD.forward
    monkeypatch.setattr(KD, 'forward', lambda self, *args: {
        k: v * float('nan') for k, v in forward(self, *args).items()})
    code = load_tool().main(['--smoke', '--tasks', 'cifar', '--methods', 'KD', '--variants',
                             '--no-launchers', '--out', str(tmp_path)])
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert code == 1 and not report['passed']
    assert report['failed'] == ['cifar/KD/fp32', 'cifar/KD/amp']
    fp32 = report['cases'][0]
    assert 'non-finite loss' in fp32['failures']
    assert 'FAILED' in (tmp_path / 'gpu_check.md').read_text().splitlines()[0]


def test_a_crashing_case_is_recorded_and_the_others_run(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError('CUDA error: an illegal memory access was encountered')
    monkeypatch.setattr(gpu_check, 'first_step_losses', crash)
    results = gpu_check.run(['cifar'], gpu_check.Settings.create(True, 'cpu'), ['KD'], [],
                            log=lambda line: None)
    assert [r['status'] for r in results] == ['failed', 'failed']
    assert 'illegal memory access' in results[0]['failures'][0]
    assert 'illegal memory access' in gpu_report.case_row(results[0])


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU refusal')
def test_without_a_gpu_only_the_smoke_form_runs(tmp_path, capsys):
    assert load_tool().main(['--out', str(tmp_path)]) == 2
    assert '--smoke' in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_unknown_method_is_refused(tmp_path, capsys):
    assert load_tool().main(['--smoke', '--methods', 'NoSuchKD', '--out', str(tmp_path)]) == 2
    assert "unknown --methods ['NoSuchKD']" in capsys.readouterr().err


def test_every_registered_method_is_found_with_its_configs():
    for task in overhead.TASKS:
        found = dict(gpu_check.method_configs(task))
        assert set(found) == set(DISTILL_METHODS.module_dict)
        assert all(gpu_check.has_config(config) for name, config in found.items()
                   if DISTILL_METHODS.get(name).__module__.startswith('kdbench.'))
    assert dict(gpu_check.method_configs('voc'))['CATKD'] == \
        'configs/seg/cat_kd_deeplabv3p_r101_r18_voc.py'


def test_a_method_without_a_shipped_config_is_skipped_with_a_note():
    class NewKD(KD):
        pass
    with registered_method(NewKD):
        results = gpu_check.run(['cifar'], gpu_check.Settings.create(True, 'cpu'), ['NewKD'],
                                ['channels_last'], log=lambda line: None)
    assert [r['status'] for r in results] == ['skipped', 'skipped']
    assert results[0]['note'] == \
        'no shipped config configs/cls/test_gpu_check_resnet32x4_resnet8x4_cifar100.py'
    assert 'no method' in results[1]['note']


def test_scaler_skips_count_decreases_after_warmup():
    # scale before step 0, then after steps 0..4: decreases at steps 0, 1 (warm-up) and 3
    scales = [65536.0, 32768.0, 16384.0, 16384.0, 8192.0, 8192.0]
    assert gpu_check.scaler_skips(scales, warmup=2) == 1
    assert gpu_check.scaler_skips(scales, warmup=0) == 3
    assert gpu_check.scaler_skips(scales, warmup=4) == 0
    assert gpu_check.scaler_skips([None, None], warmup=0) is None


def test_loss_difference_is_relative_with_a_floor():
    reference = dict(loss=2.0, loss_kd=0.0)
    assert gpu_check.loss_difference(dict(loss=2.02, loss_kd=0.0), reference) == \
        pytest.approx(0.01)
    assert gpu_check.loss_difference(dict(loss=2.0, loss_kd=1e-5), reference) == \
        pytest.approx(1e-5 / gpu_check.LOSS_FLOOR)
    assert gpu_check.loss_difference(dict(loss=2.0), reference) == float('inf')


def test_first_step_losses_are_repeatable_with_dropout_and_keep_batchnorm_state(tmp_path):
    with DefaultScope.overwrite_default_scope('kdbench'):
        case = overhead.build_case('configs/demo/kd_resnet20_resnet8_digits.py',
                                   Shape(4, 16), TeacherCheckpoints(str(tmp_path)))
    net = case.distiller.student.net
    net.relu = nn.Sequential(nn.ReLU(), nn.Dropout(0.5))
    buffers = [b.clone() for b in case.distiller.buffers()]
    first = gpu_check.first_step_losses(case)
    assert gpu_check.first_step_losses(case) == first
    assert all(torch.equal(a, b) for a, b in zip(buffers, case.distiller.buffers()))
    assert net.relu[1].training
    case.distill_step()                        # a training step: dropout on, BN updated
    assert case.log_vars['loss'].item() != first['loss']
    assert not all(torch.equal(a, b) for a, b in zip(buffers, case.distiller.buffers()))


@pytest.mark.slow
def test_full_smoke_through_the_command_line(tmp_path):
    """Every method of both tasks, the three speed switches per task and the launchers."""
    env = dict(os.environ, PYTHONPATH=ROOT, NO_ALBUMENTATIONS_UPDATE='1')
    done = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'gpu_check.py'),
                           '--smoke', '--out', str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    methods = [entry.name for entry in registered_methods()]      # the report's order
    for task in overhead.TASKS:
        cases = [(c['method'], c['case']) for c in report['cases'] if c['task'] == task]
        assert cases[:2 * len(methods)] == [(m, p) for m in methods for p in ('fp32', 'amp')]
        assert [c for _, c in cases[2 * len(methods):]] == list(gpu_check.SMOKE_VARIANTS)
    assert all(c['status'] == 'ok' for c in report['cases'])
    launchers = report['launchers']
    assert launchers['status'] == 'ok' and launchers['backend'] == 'gloo'
    assert launchers['metrics_dist'] == launchers['metrics_single']
    assert set(launchers['metrics_dist']) == {'accuracy/top1', 'accuracy/top5'}
    assert (tmp_path / 'gpu_check.md').read_text().count('| voc |') == 2 * len(methods) + 3
