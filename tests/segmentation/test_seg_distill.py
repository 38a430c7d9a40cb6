"""KD, AT and CAT-KD on dense maps: a Distiller of two DeepLabV3+ models."""
import pytest
import torch

import tasks.segmentation  # noqa: F401  (registers the segmentor)
from kdbench.distill.functional import at_loss, cat_loss, kd_loss
from kdbench.distill.taps import Taps
from kdbench.registry import MODELS

K = 3


def _seg(encoder, **kwargs):
    return dict(type='DeepLabV3PlusSegmentor', encoder=encoder, num_classes=K, **kwargs)


def _distiller(teacher_ckpt, methods, teacher=None, student=None):
    """A Distiller of two DeepLabV3+ models; ``teacher_ckpt``: the conftest fixture."""
    teacher = teacher or _seg('resnet18')
    path = teacher_ckpt(teacher, seed=1)
    torch.manual_seed(0)
    return MODELS.build(dict(type='Distiller', student=student or _seg('mobilenet_v2'),
                             teacher=teacher, teacher_ckpt=path, methods=methods))


def _batch(seed=0, size=(48, 64)):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, K, (2, *size), generator=gen)
    labels[:, :16] = 255
    return torch.randn(2, 3, *size, generator=gen), dict(label=labels)


def _taps(model, names, inputs):
    points = {n: model.tap_points[n] for n in names}
    with torch.no_grad(), Taps(model, points) as taps:
        model(inputs)
    return taps.tensors()


def test_dense_kd_at_catkd_values_match_their_functions(teacher_ckpt):
    methods = dict(kd=dict(type='KD', temperature=2.0, loss_weight=1.0, ignore_index=255),
                   at=dict(type='AT', loss_weight=10.0),
                   cat_kd=dict(type='CATKD', beta=5.0, resolution=4, taps=('logits',)))
    model = _distiller(teacher_ckpt, methods).train()
    inputs, samples = _batch()
    torch.manual_seed(5)
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_seg', 'loss_kd', 'loss_at', 'loss_cat_kd'}

    # Recompute each term from the tapped tensors: the student again in train mode with
    # the same seed (same batch statistics, same ASPP dropout), the teacher in eval mode.
    torch.manual_seed(5)
    student_taps = _taps(model.student, ('logits', 'last_stage'), inputs)
    teacher_taps = _taps(model.teacher, ('logits', 'last_stage'), inputs)
    labels = samples['label']
    expected_kd = kd_loss(student_taps['logits'], teacher_taps['logits'], 2.0, 255, labels)
    expected_at = 10.0 * at_loss(student_taps['last_stage'], teacher_taps['last_stage'])
    expected_cat = 5.0 * cat_loss(student_taps['logits'], teacher_taps['logits'], 4, True)
    assert losses['loss_kd'].item() == pytest.approx(expected_kd.item(), rel=1e-4)
    assert losses['loss_at'].item() == pytest.approx(expected_at.item(), rel=1e-4)
    assert losses['loss_cat_kd'].item() == pytest.approx(expected_cat.item(), rel=1e-4)


def test_dense_kd_ignores_pixels_labelled_255(teacher_ckpt):
    model = _distiller(teacher_ckpt, dict(kd=dict(type='KD', temperature=1.0, loss_weight=1.0,
                                                  ignore_index=255))).eval()
    inputs, samples = _batch()
    base = model(inputs, samples, mode='loss')['loss_kd']
    # The mean runs over the valid pixels only: ignoring more rows changes it, and a map
    # without any valid pixel gives 0 (not NaN).
    wider = dict(label=samples['label'].clone())
    wider['label'][:, :32] = 255
    assert model(inputs, wider, mode='loss')['loss_kd'].item() != pytest.approx(base.item())
    nothing = dict(label=torch.full_like(samples['label'], 255))
    assert model(inputs, nothing, mode='loss')['loss_kd'].item() == 0


def test_gradients_reach_the_student_never_the_teacher(teacher_ckpt):
    methods = dict(kd=dict(type='KD', ignore_index=255),
                   at=dict(type='AT'),
                   cat_kd=dict(type='CATKD', taps=('logits',)))
    model = _distiller(teacher_ckpt, methods).train()
    inputs, samples = _batch(1)
    losses = model(inputs, samples, mode='loss')
    sum(v for k, v in losses.items() if k != 'loss_seg').backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    grads = [p.grad for p in model.student.net.encoder.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_at_with_different_teacher_and_student_strides(teacher_ckpt):
    model = _distiller(teacher_ckpt, dict(at=dict(type='AT')),
                       teacher=_seg('resnet18', output_stride=8)).train()
    assert model.teacher.tap_points['last_stage'].stride == 8
    assert model.student.tap_points['last_stage'].stride == 16
    losses = model(*_batch(2), mode='loss')
    assert torch.isfinite(losses['loss_at']) and losses['loss_at'] > 0


def test_class_count_mismatch_is_refused(teacher_ckpt):
    teacher = dict(_seg('resnet18'), num_classes=K + 1)
    for methods in (dict(kd=dict(type='KD', ignore_index=255)),
                    dict(cat_kd=dict(type='CATKD', taps=('logits',)))):
        with pytest.raises(ValueError, match=f"{K} classes but the teacher(.s)? has {K + 1}"):
            _distiller(teacher_ckpt, methods, teacher=teacher)
