"""Every shipped CAT-KD pair builds with its real architectures and takes a step."""
import glob
import os

import pytest
import torch
from shared_setup import ROOT

PAIRS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'cls', 'cat_kd_*.py')))


def _vit_at_test_size(model_cfg: dict) -> None:
    """A timm ViT teacher (fixed patch grid) built for config_step's 64 px images."""
    teacher = model_cfg['teacher']
    if teacher['type'] == 'TimmClassifier' and teacher['model_name'].startswith(('vit', 'deit')):
        teacher['img_size'] = 64


@pytest.mark.parametrize('path', PAIRS, ids=os.path.basename)
def test_cat_kd_pair_trains_one_step(path, config_step):
    distiller, losses = config_step(path, _vit_at_test_size)
    assert set(losses) == {'loss_cls', 'loss_cat_kd'}
    assert torch.isfinite(losses['loss_cat_kd']) and losses['loss_cat_kd'] > 0
    fc = distiller.student.get_submodule(distiller.student.tap_points['classifier'].module)
    assert fc.bias is None and fc.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in distiller.teacher.parameters())
