"""Distiller speed switches (``model.speed``) give the losses and gradients of the default
configuration; SpeedOptions acts on the modules it is given."""
import copy

import pytest
import torch
from mmengine.config import Config
from torch import nn

from kdbench.distill.speed import SpeedOptions
from kdbench.registry import MODELS

METHODS = dict(kd=dict(type='KD'), at=dict(type='AT'),
               cat_kd=dict(type='CATKD', taps=('pre_pool', 'classifier')),
               tat=dict(type='TaT', theta='conv1x1_bn', gamma='conv1x1_bn'))


@pytest.fixture
def model_cfg(tiny_classifier_cfg, teacher_ckpt):
    """A resnet14 -> resnet8 Distiller config with every method."""
    teacher = tiny_classifier_cfg('resnet14', 10)
    student = dict(tiny_classifier_cfg('resnet8'), classifier_bias=False)   # CAT-KD
    return dict(type='Distiller', student=student, teacher=teacher,
                teacher_ckpt=teacher_ckpt(teacher, seed=1000), methods=METHODS)


@pytest.fixture
def build(model_cfg):
    """``build(**speed)``: the Distiller of ``model_cfg`` with ``speed=dict(**speed)``, same
    seed; ``build(flat=dict(...))`` passes Distiller arguments as they are instead."""
    def make(flat=None, **speed):
        torch.manual_seed(0)
        distiller = MODELS.build(dict(model_cfg, **(flat or dict(speed=speed))))
        return distiller.eval()     # BN on running statistics: identical batches, no drift
    return make


@pytest.fixture
def batch():
    torch.manual_seed(7)
    return torch.randn(4, 3, 16, 16), dict(label=torch.tensor([0, 3, 7, 9]))


def _steps(distiller, batch, steps=2):
    """Losses and student gradients of ``steps`` loss calls (the first one checks the
    taps eagerly, later ones take the fast path)."""
    results = []
    for _ in range(steps):
        distiller.zero_grad(set_to_none=True)
        losses = distiller(*batch, mode='loss')
        sum(losses.values()).backward()
        grads = {n: p.grad.clone() for n, p in distiller.student.named_parameters()}
        results.append(({k: v.detach() for k, v in losses.items()}, grads))
    return results


def _assert_same(expected, actual, rtol, atol):
    for (losses_e, grads_e), (losses_a, grads_a) in zip(expected, actual):
        assert set(losses_e) == set(losses_a)
        for key in losses_e:
            torch.testing.assert_close(losses_a[key], losses_e[key], rtol=rtol, atol=atol,
                                       msg=key)
        for name in grads_e:
            torch.testing.assert_close(grads_a[name], grads_e[name], rtol=rtol,
                                       atol=atol * 10, msg=name)


@pytest.mark.parametrize('options', [dict(teacher_mode='inference_mode'),
                                     dict(channels_last=True)],
                         ids=['inference_mode', 'channels_last'])
def test_option_gives_the_default_losses_and_gradients(build, batch, options):
    expected = _steps(build(), batch)
    _assert_same(expected, _steps(build(**options), batch), rtol=1e-4, atol=1e-5)


def test_inference_mode_teacher_outputs_are_ordinary_tensors(build, batch):
    distiller = build(teacher_mode='inference_mode')
    _steps(distiller, batch, steps=1)
    calls = []
    distiller.teacher.register_forward_hook(
        lambda *args: calls.append(torch.is_inference_mode_enabled()))
    outputs = distiller.teacher_forward(batch[0])
    assert calls == [True]
    assert outputs and all(not t.is_inference() and not t.requires_grad
                           for t in outputs.values())


def test_bfloat16_teacher_is_close_to_float32(build, batch):
    distiller = build(teacher_dtype='bfloat16')
    assert all(p.dtype == torch.bfloat16 for p in distiller.teacher.parameters())
    assert all(t.dtype == torch.float32 for t in distiller.teacher_forward(batch[0]).values())
    expected = _steps(build(), batch, steps=1)
    # bfloat16 keeps 8 bits of mantissa: the teacher's features differ by ~1%.
    _assert_same(expected, _steps(distiller, batch, steps=1), rtol=0.1, atol=0.05)
    assert all(p.grad is None for p in distiller.teacher.parameters())


def test_compiled_student_gives_the_default_losses(build, batch):
    compiled = build(compile_student=dict(backend='aot_eager'))
    expected = _steps(build(), batch, steps=3)
    _assert_same(expected, _steps(compiled, batch, steps=3), rtol=1e-4, atol=1e-5)
    assert compiled.speed.compiled is not None
    assert list(compiled.state_dict()) == list(build().state_dict())  # keys unchanged
    copied = copy.deepcopy(compiled)           # e.g. an EMA model: runs eagerly
    assert copied.speed.compiled is None
    torch.testing.assert_close(copied(*batch, mode='loss')['loss_kd'], expected[0][0]['loss_kd'])


def test_in_place_corruption_is_caught_on_the_first_step_of_fast_modes(build, batch):
    distiller = build(teacher_mode='inference_mode')
    # The pooling layer after the tapped last stage rewrites its input in place.
    distiller.teacher.net.avgpool.register_forward_pre_hook(lambda m, args: args[0].relu_())
    with pytest.raises(RuntimeError, match='modified in place'):
        distiller(*batch, mode='loss')


@pytest.mark.parametrize('options, match', [
    (dict(teacher_mode='enable_grad'), 'teacher_mode'),
    (dict(teacher_dtype='float64'), 'teacher_dtype')])
def test_invalid_options_raise(build, options, match):
    with pytest.raises(ValueError, match=match):
        build(**options)


def test_compile_without_cpp_compiler_fails_clearly(build, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip('inductor on a GPU needs no C++ compiler for this check')
    monkeypatch.setattr('shutil.which', lambda name: None)
    with pytest.raises(RuntimeError, match='C\\+\\+ compiler'):
        build(compile_student=True)


@pytest.mark.parametrize('name, value', [
    ('teacher_mode', 'inference_mode'), ('teacher_dtype', 'float16'),
    ('channels_last', True), ('compile_student', True)])
def test_flat_switch_on_the_distiller_names_its_speed_key(build, name, value):
    with pytest.raises(TypeError, match=f'model.speed.{name} ') as error:
        build(flat={name: value})
    assert f'speed=dict({name}={value!r})' in str(error.value)


def test_unknown_arguments_are_named(build):
    with pytest.raises(ValueError, match=r"model.speed has unknown keys \['dtype'\]"):
        build(dtype='float16')
    with pytest.raises(TypeError, match=r"unexpected arguments \['teacher_weights'\]"):
        build(flat=dict(teacher_weights='x.pth'))


def test_cfg_options_reach_the_speed_switches(model_cfg):
    cfg = Config(dict(model=model_cfg))
    cfg.merge_from_dict({'model.speed.teacher_dtype': 'bfloat16'})
    distiller = MODELS.build(cfg.model)
    assert distiller.speed.teacher_dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in distiller.teacher.parameters())
    assert all(p.dtype == torch.float32 for p in distiller.student.parameters())


def test_apply_converts_the_modules_it_is_given():
    student, teacher = nn.Conv2d(3, 4, 3), nn.Conv2d(3, 4, 3)
    methods = nn.ModuleDict(dict(at=nn.Conv2d(4, 4, 3)))
    SpeedOptions(teacher_dtype='bfloat16', channels_last=True).apply(student, teacher, methods)
    assert teacher.weight.dtype == torch.bfloat16
    assert student.weight.dtype == methods.at.weight.dtype == torch.float32
    for conv in (student, teacher, methods.at):
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_compiled_student_forward_only_on_fast_steps():
    student = nn.Linear(2, 2)
    speed = SpeedOptions(compile_student=dict(backend='aot_eager'))
    speed.apply(student, nn.Linear(2, 2), nn.ModuleDict())
    assert speed.student_forward(student, fast=False) == (student, False)
    assert speed.student_forward(student, fast=True) == (speed.compiled, True)
    assert SpeedOptions().student_forward(student, fast=True) == (student, False)
