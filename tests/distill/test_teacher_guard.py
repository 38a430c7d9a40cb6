"""The Distiller's teacher guard: a teacher put back in train mode or made trainable after
construction stops the next training step with the problem and the fix named; the teacher
never holds gradients after a Runner step."""
import os

import pytest
import torch
from mmengine.runner import Runner
from shared_setup import ROOT

from kdbench.apis import load_config
from kdbench.registry import MODELS


@pytest.fixture
def distiller(tiny_classifier_cfg, teacher_ckpt):
    teacher = tiny_classifier_cfg('resnet8', 10)
    model = MODELS.build(dict(type='Distiller', student=tiny_classifier_cfg('resnet8', 10),
                              teacher=teacher, teacher_ckpt=teacher_ckpt(teacher),
                              methods=dict(kd=dict(type='KD'))))
    return model.train()


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return torch.randn(2, 3, 16, 16), dict(label=torch.tensor([1, 2]))


def test_frozen_teacher_passes(distiller, batch):
    assert set(distiller(*batch, mode='loss')) == {'loss_cls', 'loss_kd'}


@pytest.mark.parametrize('unfreeze, named', [
    (lambda d: d.teacher.train(), 'the teacher itself'),
    (lambda d: d.teacher.net.bn1.train(), "['net.bn1']"),     # one submodule is caught too
])
def test_teacher_in_train_mode_raises(distiller, batch, unfreeze, named):
    unfreeze(distiller)
    with pytest.raises(RuntimeError, match='teacher is in training mode') as info:
        distiller(*batch, mode='loss')
    assert 'distiller.teacher.eval()' in str(info.value)
    assert named in str(info.value)
    distiller.train()                           # the documented fix
    distiller(*batch, mode='loss')


def test_trainable_teacher_raises(distiller, batch):
    distiller.teacher.net.fc.requires_grad_(True)
    with pytest.raises(RuntimeError, match='2 parameters that require grad') as info:
        distiller(*batch, mode='loss')
    message = str(info.value)
    assert 'net.fc.weight' in message and 'requires_grad_(False)' in message
    distiller.teacher.requires_grad_(False)
    distiller(*batch, mode='loss')


def test_inference_modes_are_not_guarded(distiller, batch):
    distiller.teacher.train()                   # only training steps (loss mode) check
    distiller(batch[0], mode='tensor')


def test_teacher_has_no_gradients_after_runner_steps(tmp_path, tiny_classifier_cfg,
                                                     teacher_ckpt):
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'kd_resnet20_resnet8_digits.py'),
                      dict(log_level='WARNING'), str(tmp_path))
    cfg.model.teacher = tiny_classifier_cfg('resnet8', 10)
    cfg.model.teacher_ckpt = teacher_ckpt(cfg.model.teacher)
    cfg.train_cfg = dict(by_epoch=False, max_iters=2, val_interval=3)
    cfg.param_scheduler = []
    cfg.train_dataloader.batch_size = 8
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=10)
    cfg.log_processor = dict(by_epoch=False)
    # mmengine's default constructor hands the optimizer every parameter (kdbench's
    # ParamGroupsConstructor leaves the frozen teacher out) ...
    cfg.optim_wrapper.constructor = 'DefaultOptimWrapperConstructor'
    runner = Runner.from_cfg(cfg)
    teacher = {k: v.clone() for k, v in runner.model.teacher.state_dict().items()}
    runner.train()
    optimized = {id(p) for g in runner.optim_wrapper.optimizer.param_groups for p in g['params']}
    assert any(id(p) in optimized for p in runner.model.teacher.parameters())
    # ... yet the teacher never gets a gradient and never moves.
    assert all(p.grad is None for p in runner.model.teacher.parameters())
    for key, value in runner.model.teacher.state_dict().items():
        assert torch.equal(value, teacher[key]), key
