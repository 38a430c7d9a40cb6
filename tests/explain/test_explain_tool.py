"""tools/explain.py end to end on random-init demo checkpoints (digits, resnet20 -> resnet8),
and its clear errors on bad input."""
import importlib.util
import json
import os

import pytest
import torch
from PIL import Image
from shared_setup import ROOT

from kdbench.apis import load_config, task_model_cfg
from kdbench.registry import MODELS

TEACHER_CFG = os.path.join(ROOT, 'configs/demo/resnet20_digits.py')
BASE_CFG = os.path.join(ROOT, 'configs/demo/resnet8_digits.py')
KD_CFG = os.path.join(ROOT, 'configs/demo/kd_resnet20_resnet8_digits.py')
FAST = ['--images', '8', '--batch-size', '4', '--rows', '2', '--label-embeddings', 'onehot']


def _tool():
    spec = importlib.util.spec_from_file_location('explain_tool',
                                                  os.path.join(ROOT, 'tools/explain.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model_state(cfg_path: str, seed: int) -> dict:
    torch.manual_seed(seed)
    return MODELS.build(task_model_cfg(load_config(cfg_path).model)).state_dict()


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """Teacher and base checkpoints, a Distiller checkpoint of the KD student and a KD
    config whose teacher_ckpt is the teacher checkpoint."""
    folder = tmp_path_factory.mktemp('explain')
    teacher, base = str(folder / 'teacher.pth'), str(folder / 'base.pth')
    torch.save({'state_dict': _model_state(TEACHER_CFG, 0)}, teacher)
    torch.save({'state_dict': _model_state(BASE_CFG, 1)}, base)
    distiller = {f'student.{k}': v for k, v in _model_state(BASE_CFG, 2).items()}
    distiller.update({f'teacher.{k}': v for k, v in _model_state(TEACHER_CFG, 0).items()})
    student = str(folder / 'kd_student.pth')
    torch.save({'state_dict': distiller, 'meta': {}}, student)
    kd_cfg = folder / 'kd.py'
    kd_cfg.write_text(f'_base_ = [{KD_CFG!r}]\nmodel = dict(teacher_ckpt={teacher!r})\n')
    return dict(teacher=teacher, base=base, student=student, kd_cfg=str(kd_cfg), folder=folder)


def test_tool_writes_the_figures_and_the_score_table(files, tmp_path):
    out = tmp_path / 'out'
    report = _tool().main([files['kd_cfg'], files['student'], '--base', BASE_CFG, files['base'],
                           '--out', str(out)] + FAST + ['--images', '5'])
    assert sorted(os.listdir(out)) == ['explain.png', 'scores.json', 'scores.md', 'stages.png']
    assert json.loads((out / 'scores.json').read_text()) == report
    assert report['models']['teacher'] == dict(config=files['kd_cfg'],
                                               checkpoint=files['teacher'], part='model.teacher',
                                               top1=report['models']['teacher']['top1'])
    assert report['models']['base']['checkpoint'] == files['base']
    assert report['images'] == 5 and report['batches'] == 1 and report['batch_sizes'] == [5]
    assert report['taps'] == ['stage1', 'stage2', 'stage3']
    for row in report['scores'].values():
        assert set(row) == {'fss', 'rs_base', 'rs_student', 'rs_teacher', 'rs_residual',
                            'rs_distilled'}
        assert all(-0.5 < v <= 1.0 + 1e-6 for v in row.values())
    table = (out / 'scores.md').read_text()
    assert '| layer | FSS | RS base | RS student | RS teacher | RS residual | RS distilled |' \
        in table
    assert sum(line.startswith('| stage') for line in table.splitlines()) == 3
    with Image.open(out / 'explain.png') as main, Image.open(out / 'stages.png') as stages:
        # two image rows of 96 px tiles; 1 + 5 columns (3 CAMs, 2 UniCAMs), 1 + 3 x 5
        assert main.size[1] == stages.size[1] and 2 * 96 < main.size[1] < 3 * 96 + 60
        assert 6 * 96 < main.size[0] < 7 * 96 + 60 and stages.size[0] > 16 * 96


def test_tool_without_perturbation_teacher_or_all_stages(files, tmp_path):
    out = tmp_path / 'raw'
    report = _tool().main([files['kd_cfg'], files['student'], '--base', BASE_CFG, files['base'],
                           '--no-teacher', '--no-perturb', '--taps', 'stage3', '--cam',
                           'hirescam', '--out', str(out)] + FAST)
    assert set(report['models']) == {'base', 'student'} and report['perturbation'] is None
    assert report['images'] == 8 and report['batches'] == 2 and report['batch_sizes'] == [4]
    assert list(report['scores']) == ['stage3']
    assert set(report['scores']['stage3']) == {'fss', 'rs_base', 'rs_student'}
    assert 'perturbation: none' in (out / 'scores.md').read_text()


def test_the_teacher_stands_in_for_the_base_model_of_its_architecture(files, tmp_path):
    report = _tool().main([BASE_CFG, files['base'], '--teacher', BASE_CFG, files['student'],
                           '--taps', 'stage2', '--out', str(tmp_path)] + FAST)
    assert report['models']['base'] == report['models']['teacher']
    assert report['models']['base']['checkpoint'] == files['student']


def test_different_class_sets_are_refused(files, tmp_path):
    cfg = tmp_path / 'resnet8_5.py'
    cfg.write_text(f'_base_ = [{BASE_CFG!r}]\nmodel = dict(net=dict(num_classes=5))\n')
    torch.save({'state_dict': _model_state(str(cfg), 3)}, tmp_path / 'base5.pth')
    with pytest.raises(ValueError, match=r'different class sets: student 10 .*base 5 '
                                         r'\(.*resnet8_5.py\)'):
        _tool().main([BASE_CFG, files['base'], '--base', str(cfg), str(tmp_path / 'base5.pth'),
                      '--out', str(tmp_path)] + FAST)


@pytest.mark.parametrize('option', [['--images', '3'], ['--batch-size', '2']])
def test_three_or_fewer_samples_are_refused(files, tmp_path, option):
    with pytest.raises(ValueError, match='more than 3 samples'):
        _tool().main([BASE_CFG, files['base'], '--base', BASE_CFG, files['base'],
                      '--out', str(tmp_path)] + FAST + option)


def test_missing_checkpoint_and_unknown_tap_are_named(files, tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='base checkpoint .*nope.pth.*BASE_CKPT'):
        _tool().main([BASE_CFG, files['base'], '--base', BASE_CFG, missing] + FAST)
    with pytest.raises(KeyError, match="Unknown tap 'stage7' for the student"):
        _tool().main([BASE_CFG, files['base'], '--base', BASE_CFG, files['base'],
                      '--taps', 'stage7'] + FAST)


def test_no_base_model_is_refused(files):
    with pytest.raises(ValueError, match='No base model: pass --base'):
        _tool().main([files['kd_cfg'], files['student']] + FAST)


SEG_DIR = os.path.join(ROOT, 'configs/demo/seg')


@pytest.mark.slow
def test_tool_runs_on_segmentation_checkpoints(tmp_path):
    """DeepLabV3+ R34 -> R18 on the digit scenes: seg Grad-CAM maps, scores per stage."""
    teacher_cfg = os.path.join(SEG_DIR, 'deeplabv3p_r34_digitseg.py')
    base_cfg = os.path.join(SEG_DIR, 'deeplabv3p_r18_digitseg.py')
    teacher, base = str(tmp_path / 'teacher.pth'), str(tmp_path / 'base.pth')
    torch.save({'state_dict': _model_state(teacher_cfg, 0)}, teacher)
    torch.save({'state_dict': _model_state(base_cfg, 1)}, base)
    student = str(tmp_path / 'student.pth')
    torch.save({'state_dict': _model_state(base_cfg, 2)}, student)
    out = tmp_path / 'out'
    report = _tool().main([base_cfg, student, '--base', base_cfg, base, '--teacher',
                           teacher_cfg, teacher, '--taps', 'stage4', 'last_stage',
                           '--out', str(out)] + FAST)
    assert sorted(os.listdir(out)) == ['explain.png', 'scores.json', 'scores.md', 'stages.png']
    assert report['images'] == 8 and list(report['scores']) == ['stage4', 'last_stage']
    for row in report['scores'].values():
        assert set(row) == {'fss', 'rs_base', 'rs_student', 'rs_teacher', 'rs_residual',
                            'rs_distilled'}
        assert all(-0.5 < v <= 1.0 + 1e-6 for v in row.values())


def test_tool_scoring_code_switches_the_official_codes_choices(files, tmp_path):
    out = tmp_path / 'code'
    args = [files['kd_cfg'], files['student'], '--base', BASE_CFG, files['base']] + FAST + [
        '--images', '10']
    report = _tool().main(args + ['--out', str(out), '--scoring', 'code'])
    assert report['scoring'] == 'code' and report['cam'] == 'hirescam'
    assert (report['batches'], report['batch_sizes'], report['divisor']) == (2, [4], 3)
    assert 'scoring: code (UniCAM on the pooled final features' in (out / 'scores.md').read_text()
    paper = _tool().main(args + ['--out', str(tmp_path / 'paper')])
    assert paper['scoring'] == 'paper' and paper['cam'] == 'gradcam'
    assert (paper['batches'], paper['batch_sizes'], paper['divisor']) == (2, [5], 2)
    assert paper['scores']['stage1']['fss'] != report['scores']['stage1']['fss']
