"""Distiller speed switches (``model.speed``) give the losses and gradients of the default
configuration; the Distiller converts its modules and compiles its student as they say."""
import copy

import pytest
import torch
from mmengine.config import Config

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
    assert compiled.student_compiled
    assert list(compiled.state_dict()) == list(build().state_dict())  # keys unchanged
    copied = copy.deepcopy(compiled)           # e.g. an EMA model: runs eagerly
    assert not copied.student_compiled
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


def test_speed_converts_the_distillers_modules(build):
    distiller = build(teacher_dtype='bfloat16', channels_last=True)
    assert all(p.dtype == torch.bfloat16 for p in distiller.teacher.parameters())
    assert all(p.dtype == torch.float32 for module in (distiller.student, distiller.methods)
               for p in module.parameters())
    weights = [p for p in distiller.parameters() if p.dim() == 4]
    assert any(p is q for p in weights for q in distiller.methods.parameters())  # TaT's convs
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


def test_format_inputs_makes_only_image_batches_channels_last(build, batch):
    images = batch[0]
    assert build().format_inputs(images) is images
    distiller = build(channels_last=True)
    assert distiller.format_inputs(images).is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(distiller.format_inputs(images), images, rtol=0, atol=0)
    sequence = torch.randn(4, 5, 6)                 # other ranks pass unchanged
    assert distiller.format_inputs(sequence) is sequence


def test_compiled_student_forward_only_on_fast_steps(build, batch, monkeypatch):
    calls = []

    def recording_compile(forward, **options):
        def compiled(*args, **kwargs):
            calls.append(options)
            return forward(*args, **kwargs)
        return compiled
    monkeypatch.setattr(torch, 'compile', recording_compile)
    distiller = build(compile_student=dict(backend='aot_eager'))
    _steps(distiller, batch, steps=1)
    assert calls == []                                 # the first step runs eagerly
    _steps(distiller, batch, steps=2)
    assert calls == [dict(backend='aot_eager')] * 2
    default = build()
    _steps(default, batch, steps=2)
    assert not default.student_compiled and len(calls) == 2


def test_options_from_config():
    assert SpeedOptions.from_config(None) == SpeedOptions()
    options = SpeedOptions.from_config(dict(teacher_dtype='float16', compile_student=True,
                                            channels_last=1))
    assert options == SpeedOptions(teacher_dtype=torch.float16, channels_last=True,
                                   compile_student={})
    assert SpeedOptions.from_config(dict(compile_student=False)).compile_student is None
    with pytest.raises(ValueError, match="teacher_dtype must be None or one of .* got 'float64'"):
        SpeedOptions(teacher_dtype=torch.float64)
