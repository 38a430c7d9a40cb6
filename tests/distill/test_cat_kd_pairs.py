"""Every shipped CAT-KD pair builds with its real architectures and takes a step."""
import glob
import os

import pytest
import torch
from mmengine.config import Config

from kdbench.registry import MODELS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAIRS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'cls', 'cat_kd_*.py')))


@pytest.mark.parametrize('path', PAIRS, ids=os.path.basename)
def test_cat_kd_pair_trains_one_step(path, tmp_path, teacher_ckpt):
    model_cfg = Config.fromfile(path).model.to_dict()
    model_cfg['teacher_ckpt'] = teacher_ckpt(model_cfg['teacher'])
    distiller = MODELS.build(model_cfg)
    side = 64 if 'imagenet' in path else 32
    inputs = torch.randint(0, 256, (2, 3, side, side), dtype=torch.uint8)
    data = distiller.data_preprocessor(dict(inputs=inputs, data_samples=dict(
        label=torch.tensor([1, 3]))), True)
    distiller.train()
    losses = distiller(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_cat_kd'}
    assert torch.isfinite(losses['loss_cat_kd']) and losses['loss_cat_kd'] > 0
    sum(losses.values()).backward()
    fc = distiller.student.get_submodule(distiller.student.tap_points['classifier'].module)
    assert fc.bias is None and fc.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in distiller.teacher.parameters())
