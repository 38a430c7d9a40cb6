"""KD: kd_loss (classification and dense logits) and the registered KD method."""
import math

import pytest
import torch
import torch.nn.functional as F

from kdbench.distill.functional import kd_loss
from kdbench.distill.taps import TapPoint
from kdbench.registry import DISTILL_METHODS


def _kd(**kwargs):
    return DISTILL_METHODS.build(dict(type='KD', **kwargs))


# ----------------------------------------------------------------------------- kd_loss

def test_identical_logits_give_zero_loss():
    torch.manual_seed(0)
    logits = torch.randn(5, 7) * 3
    assert kd_loss(logits, logits.clone(), temperature=4.0).item() == pytest.approx(0, abs=1e-6)
    dense = torch.randn(2, 4, 3, 5)
    assert kd_loss(dense, dense.clone(), temperature=1.0).item() == pytest.approx(0, abs=1e-6)


def test_hand_computed_value_two_classes():
    # Student logits (0, 0) at T=2 -> softmax (1/2, 1/2).
    # Teacher logits (2 ln 3, 0) at T=2 -> (ln 3, 0) -> softmax (3/4, 1/4).
    # KL(teacher || student) = 3/4 ln(3/4 / 1/2) + 1/4 ln(1/4 / 1/2) = 3/4 ln 1.5 + 1/4 ln 0.5
    # times T^2 = 4: 3 ln 1.5 + ln 0.5 = 0.5232481...
    student = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[2 * math.log(3), 0.0]])
    expected = 4 * (0.75 * math.log(1.5) + 0.25 * math.log(0.5))
    assert expected == pytest.approx(0.5232481, abs=1e-6)
    assert kd_loss(student, teacher, temperature=2.0).item() == pytest.approx(expected, rel=1e-5)
    # The direction matters: KL(student || teacher) would be 4 * (1/2 ln(2/3) + 1/2 ln 2).
    reverse = 4 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25))
    assert kd_loss(teacher, student, temperature=2.0).item() == pytest.approx(reverse, rel=1e-5)
    # Mean over samples: a second, identical pair (KL 0) halves the loss.
    student2 = torch.cat([student, torch.tensor([[1.0, -1.0]])])
    teacher2 = torch.cat([teacher, torch.tensor([[1.0, -1.0]])])
    loss2 = kd_loss(student2, teacher2, temperature=2.0).item()
    assert loss2 == pytest.approx(expected / 2, rel=1e-5)


def test_temperature_one_matches_plain_kl():
    torch.manual_seed(0)
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    p_t = t.softmax(1)
    expected = (p_t * (p_t.log() - s.log_softmax(1))).sum(1).mean()
    assert kd_loss(s, t, temperature=1.0).item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_reaches_student_and_matches_closed_form():
    torch.manual_seed(0)
    n, c, temp = 4, 6, 3.0
    student = torch.randn(n, c, requires_grad=True)
    teacher = torch.randn(n, c)
    kd_loss(student, teacher, temperature=temp).backward()
    grad = student.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # d/ds [T^2 * mean_i KL(p_t || p_s)] = T * (softmax(s/T) - softmax(t/T)) / N
    expected = temp * ((student.detach() / temp).softmax(1) - (teacher / temp).softmax(1)) / n
    assert torch.allclose(grad, expected, atol=1e-6)


def test_classification_ignore_index_drops_samples():
    torch.manual_seed(0)
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    target = torch.tensor([0, -1, 2, -1])
    loss = kd_loss(s, t, 2.0, ignore_index=-1, target=target)
    keep = target != -1
    assert loss.item() == pytest.approx(kd_loss(s[keep], t[keep], 2.0).item(), rel=1e-5)


def test_ignore_index_without_target_raises():
    with pytest.raises(ValueError, match='target'):
        kd_loss(torch.randn(2, 3), torch.randn(2, 3), ignore_index=255)


# ----------------------------------------------------------------------------- dense logits

def _dense_batch():
    torch.manual_seed(0)
    student = torch.randn(2, 3, 4, 5)
    teacher = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 4, 5))
    target[0, :2, :] = 255
    target[1, 3, 1:4] = 255
    return student, teacher, target


def test_dense_ignored_pixels_do_not_change_the_loss():
    student, teacher, target = _dense_batch()
    loss = kd_loss(student, teacher, 4.0, ignore_index=255, target=target)
    garbage = student.clone()
    ignored = (target == 255)[:, None].expand_as(garbage)
    garbage[ignored] = torch.randn(int(ignored.sum())) * 1e3
    assert not torch.equal(garbage, student)
    assert kd_loss(garbage, teacher, 4.0, ignore_index=255, target=target).item() == \
        pytest.approx(loss.item(), rel=1e-6)
    # Without the mask the garbage does change the loss (the test above can fail).
    assert kd_loss(garbage, teacher, 4.0).item() != pytest.approx(kd_loss(student, teacher,
                                                                          4.0).item(), rel=1e-3)


def test_dense_loss_is_the_mean_over_valid_pixels():
    student, teacher, target = _dense_batch()
    valid = target != 255
    per_pixel_s = student.permute(0, 2, 3, 1)[valid]      # [P, C]
    per_pixel_t = teacher.permute(0, 2, 3, 1)[valid]
    expected = kd_loss(per_pixel_s, per_pixel_t, 4.0)
    loss = kd_loss(student, teacher, 4.0, ignore_index=255, target=target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # Without ignore_index every pixel counts.
    all_s = student.permute(0, 2, 3, 1).reshape(-1, 3)
    all_t = teacher.permute(0, 2, 3, 1).reshape(-1, 3)
    assert kd_loss(student, teacher, 4.0).item() == pytest.approx(kd_loss(all_s, all_t,
                                                                          4.0).item(), rel=1e-5)


def test_dense_all_pixels_ignored_gives_zero_not_nan():
    student, teacher, _ = _dense_batch()
    target = torch.full((2, 4, 5), 255)
    loss = kd_loss(student, teacher, 4.0, ignore_index=255, target=target)
    assert loss.item() == 0


def test_dense_target_of_another_size_is_resized_nearest():
    student, teacher, target = _dense_batch()
    big = target.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)   # [2, 8, 10]
    assert kd_loss(student, teacher, 4.0, ignore_index=255, target=big).item() == \
        pytest.approx(kd_loss(student, teacher, 4.0, ignore_index=255,
                              target=target).item(), rel=1e-6)


def test_dense_teacher_of_another_size_is_resized_bilinearly():
    torch.manual_seed(0)
    student = torch.randn(2, 3, 8, 8)
    teacher = torch.randn(2, 3, 4, 4)
    resized = F.interpolate(teacher, size=(8, 8), mode='bilinear', align_corners=False)
    loss = kd_loss(student, teacher, 2.0)
    assert loss.item() == pytest.approx(kd_loss(student, resized, 2.0).item(), rel=1e-6)
    assert kd_loss(resized, teacher, 2.0).item() == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize('s_shape, t_shape', [
    ((4, 10), (4, 5)),            # classes differ
    ((4, 10), (3, 10)),           # batch differs
    ((2, 10, 4, 4), (2, 5, 4, 4)),
    ((4, 10), (4, 10, 2, 2)),     # layouts differ
])
def test_mismatched_shapes_raise_value_error_naming_them(s_shape, t_shape):
    with pytest.raises(ValueError) as info:
        kd_loss(torch.randn(*s_shape), torch.randn(*t_shape))
    assert str(s_shape) in str(info.value) and str(t_shape) in str(info.value)


# ----------------------------------------------------------------------------- KD method

def test_kd_method_returns_weighted_loss_key():
    torch.manual_seed(0)
    s, t = torch.randn(4, 10), torch.randn(4, 10)
    kd = _kd(temperature=2.0, loss_weight=0.3)
    out = kd({'logits': s}, {'logits': t})
    assert set(out) == {'loss_kd'}
    assert all(k.startswith('loss_') for k in out)
    assert out['loss_kd'].item() == pytest.approx(0.3 * kd_loss(s, t, 2.0).item(), rel=1e-6)
    kd.name = 'logit_kd'
    assert set(kd({'logits': s}, {'logits': t})) == {'loss_logit_kd'}


def test_kd_method_defaults_follow_the_cifar_recipe():
    kd = _kd()
    assert kd.temperature == 4.0 and kd.loss_weight == 0.9 and kd.taps == ('logits',)


def test_kd_method_identical_logits_zero():
    logits = torch.randn(3, 5)
    out = _kd()({'logits': logits}, {'logits': logits.clone()})
    assert out['loss_kd'].item() == pytest.approx(0, abs=1e-6)


def test_kd_method_custom_tap_and_ignore_index_reads_labels():
    student, teacher, target = _dense_batch()
    kd = _kd(temperature=4.0, loss_weight=2.0, ignore_index=255, taps='seg_logits')
    out = kd({'seg_logits': student}, {'seg_logits': teacher}, dict(label=target))
    expected = 2.0 * kd_loss(student, teacher, 4.0, ignore_index=255, target=target)
    assert out['loss_kd'].item() == pytest.approx(expected.item(), rel=1e-6)


def test_kd_method_gradient_reaches_student():
    torch.manual_seed(0)
    s = torch.randn(4, 10, requires_grad=True)
    t = torch.randn(4, 10)
    _kd()({'logits': s}, {'logits': t})['loss_kd'].backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_kd_bind_rejects_different_class_counts():
    kd = _kd()
    kd.bind({'logits': TapPoint('net.fc', 10)}, {'logits': TapPoint('net.fc', 10)})
    with pytest.raises(ValueError, match=r"'logits' has 10 classes but the teacher's has 5"):
        kd.bind({'logits': TapPoint('net.fc', 10)}, {'logits': TapPoint('net.fc', 5)})


@pytest.mark.parametrize('kwargs, message', [
    (dict(temperature=0), 'temperature must be positive'),
    (dict(temperature=-1.0), 'temperature must be positive'),
    (dict(taps=('logits', 'other')), 'exactly one logits tap'),
    (dict(taps=()), 'at least one tap'),
])
def test_kd_method_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _kd(**kwargs)
