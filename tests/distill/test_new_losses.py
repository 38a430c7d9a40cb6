"""dkd_loss, dist_loss, cwd_loss and hint_loss against hand-written loops on tiny tensors
(classification and dense forms, ignored pixels, temperatures), zeros where the maths says
so, and gradients that reach the student only."""
import math

import pytest
import torch

from kdbench.distill.functional import cwd_loss, dist_loss, dkd_loss, hint_loss


def _softmax(values):
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def _kl(p, q):
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def _dkd_item(s, t, g, alpha, beta, temp):
    """One sample's (alpha * TCKD + beta * NCKD) * T^2, the class g removed exactly."""
    p_s, p_t = _softmax([v / temp for v in s]), _softmax([v / temp for v in t])
    tckd = _kl([p_t[g], 1 - p_t[g]], [p_s[g], 1 - p_s[g]])
    others = [k for k in range(len(s)) if k != g]
    q_s = _softmax([s[k] / temp for k in others])
    q_t = _softmax([t[k] / temp for k in others])
    return (alpha * tckd + beta * _kl(q_t, q_s)) * temp ** 2


@pytest.mark.parametrize('temp, alpha, beta', [(4.0, 1.0, 8.0), (1.0, 0.5, 2.0), (2.0, 0, 1)])
def test_dkd_matches_a_loop_over_samples(temp, alpha, beta):
    torch.manual_seed(0)
    s, t = torch.randn(4, 5) * 2, torch.randn(4, 5) * 2
    target = torch.tensor([0, 3, 4, 3])
    expected = sum(_dkd_item(s[i].tolist(), t[i].tolist(), int(target[i]), alpha, beta, temp)
                   for i in range(4)) / 4
    assert dkd_loss(s, t, target, alpha, beta, temp).item() == pytest.approx(expected, rel=1e-4)


def test_dkd_defaults_are_the_cifar_recipe():
    torch.manual_seed(1)
    s, t, target = torch.randn(3, 6), torch.randn(3, 6), torch.tensor([1, 2, 5])
    expected = sum(_dkd_item(s[i].tolist(), t[i].tolist(), int(target[i]), 1.0, 8.0, 4.0)
                   for i in range(3)) / 3
    assert dkd_loss(s, t, target).item() == pytest.approx(expected, rel=1e-4)


def test_dkd_dense_is_per_pixel_with_ignored_pixels_left_out():
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 3, 2), torch.randn(2, 4, 3, 2)
    target = torch.randint(0, 4, (2, 3, 2))
    target[0, 1, 1] = target[1, 0, 0] = target[1, 2, 1] = 255
    items = [_dkd_item(s[n, :, h, w].tolist(), t[n, :, h, w].tolist(), int(target[n, h, w]),
                       1.0, 8.0, 2.0)
             for n in range(2) for h in range(3) for w in range(2) if target[n, h, w] != 255]
    loss = dkd_loss(s, t, target, temperature=2.0, ignore_index=255)
    assert len(items) == 9
    assert loss.item() == pytest.approx(sum(items) / len(items), rel=1e-4)
    # Labels at twice the logits' size are taken by nearest neighbour.
    big = target.repeat_interleave(2, 1).repeat_interleave(2, 2)
    assert dkd_loss(s, t, big, temperature=2.0, ignore_index=255).item() == \
        pytest.approx(loss.item(), rel=1e-6)


def test_dkd_is_zero_for_identical_logits_and_tckd_zero_for_equal_target_mass():
    torch.manual_seed(0)
    s, target = torch.randn(3, 5), torch.tensor([0, 1, 2])
    assert dkd_loss(s, s.clone(), target).item() == pytest.approx(0, abs=1e-6)
    # Teacher = student with the non-target logits permuted: same target probability, so
    # TCKD (alpha) is 0 and only NCKD (beta) remains.
    t = s.clone()
    t[:, 3], t[:, 4] = s[:, 4], s[:, 3]
    assert dkd_loss(s, t, target, alpha=1.0, beta=0.0).item() == pytest.approx(0, abs=1e-6)
    assert dkd_loss(s, t, target, alpha=0.0, beta=1.0).item() > 1e-3


def _pearson(a, b):
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    den = math.sqrt(sum((x - ma) ** 2 for x in a)) * math.sqrt(sum((y - mb) ** 2 for y in b))
    return num / (den + 1e-8)


def _dist_loop(rows_s, rows_t, beta, gamma, temp):
    y_s = [_softmax([v / temp for v in r]) for r in rows_s]
    y_t = [_softmax([v / temp for v in r]) for r in rows_t]
    inter = 1 - sum(_pearson(a, b) for a, b in zip(y_s, y_t)) / len(y_s)
    cols_s, cols_t = list(zip(*y_s)), list(zip(*y_t))
    intra = 1 - sum(_pearson(a, b) for a, b in zip(cols_s, cols_t)) / len(cols_s)
    return temp ** 2 * (beta * inter + gamma * intra)


@pytest.mark.parametrize('temp, beta, gamma', [(1.0, 1.0, 1.0), (4.0, 1.0, 1.0), (2.0, 0.5, 3)])
def test_dist_matches_a_loop(temp, beta, gamma):
    torch.manual_seed(0)
    s, t = torch.randn(5, 4) * 2, torch.randn(5, 4) * 2
    expected = _dist_loop(s.tolist(), t.tolist(), beta, gamma, temp)
    assert dist_loss(s, t, beta, gamma, temp).item() == pytest.approx(expected, rel=1e-5)


def test_dist_dense_takes_every_pixel_as_a_sample():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    rows = lambda x: [x[n, :, h, w].tolist() for n in range(2) for h in range(2)  # noqa: E731
                      for w in range(2)]
    expected = _dist_loop(rows(s), rows(t), 1.0, 1.0, 1.0)
    assert dist_loss(s, t).item() == pytest.approx(expected, rel=1e-5)


def test_dist_is_zero_for_identical_and_shifted_logits():
    torch.manual_seed(0)
    s = torch.randn(4, 6)
    assert dist_loss(s, s.clone()).item() == pytest.approx(0, abs=1e-5)
    # At T=4 the centred rows are small, so eps=1e-8 (added to the product of the norms,
    # as in the official code) leaves a visible residue: still ~0.
    assert dist_loss(s, s.clone(), temperature=4.0).item() == pytest.approx(0, abs=1e-3)
    # Adding a per-sample constant to the logits leaves the softmax unchanged.
    assert dist_loss(s, s + torch.randn(4, 1)).item() == pytest.approx(0, abs=1e-5)


def _cwd_loop(s, t, temp):
    n, c = s.shape[:2]
    total = 0.0
    for i in range(n):
        for j in range(c):
            p_s = _softmax([v / temp for v in s[i, j].flatten().tolist()])
            p_t = _softmax([v / temp for v in t[i, j].flatten().tolist()])
            total += _kl(p_t, p_s)
    return total / (n * c) * temp ** 2


@pytest.mark.parametrize('temp', [4.0, 1.0])
def test_cwd_matches_a_loop_over_channels(temp):
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 3, 4) * 2, torch.randn(2, 3, 3, 4) * 2
    assert cwd_loss(s, t, temp).item() == pytest.approx(_cwd_loop(s, t, temp), rel=1e-5)


def test_cwd_default_temperature_is_four():
    torch.manual_seed(0)
    s, t = torch.randn(1, 2, 2, 3), torch.randn(1, 2, 2, 3)
    assert cwd_loss(s, t).item() == pytest.approx(_cwd_loop(s, t, 4.0), rel=1e-5)


def test_cwd_is_zero_for_identical_and_channel_shifted_maps():
    torch.manual_seed(0)
    s = torch.randn(2, 3, 4, 4)
    assert cwd_loss(s, s.clone()).item() == pytest.approx(0, abs=1e-6)
    # A constant per channel does not change that channel's spatial distribution.
    assert cwd_loss(s, s + torch.randn(2, 3, 1, 1)).item() == pytest.approx(0, abs=1e-5)


def test_cwd_resizes_the_teacher_and_rejects_other_channels():
    torch.manual_seed(0)
    s, t = torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2)
    up = torch.nn.functional.interpolate(t, size=(4, 4), mode='bilinear', align_corners=False)
    assert cwd_loss(s, t).item() == pytest.approx(cwd_loss(s, up).item(), rel=1e-6)
    with pytest.raises(ValueError, match='align the channels'):
        cwd_loss(s, torch.randn(1, 3, 4, 4))


def test_hint_loss_is_the_mean_squared_error():
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    t = torch.tensor([[[[0.0, 2.0], [5.0, 4.0]]]])
    assert hint_loss(s, t).item() == pytest.approx((1 + 0 + 4 + 0) / 4)
    assert hint_loss(s, s.clone()).item() == 0
    with pytest.raises(ValueError, match='differ in shape'):
        hint_loss(s, torch.zeros(1, 2, 2, 2))


def _dense_labels():
    return torch.tensor([[[0, 1], [2, 255]]])


@pytest.mark.parametrize('loss_fn, dense', [
    (lambda s, t: dkd_loss(s, t, torch.tensor([1, 0])), False),
    (lambda s, t: dkd_loss(s, t, _dense_labels(), ignore_index=255), True),
    (dist_loss, False), (dist_loss, True), (cwd_loss, True), (hint_loss, True)])
def test_gradients_reach_the_student_only(loss_fn, dense):
    torch.manual_seed(0)
    shape = (1, 3, 2, 2) if dense else (2, 3)
    student = torch.randn(shape, requires_grad=True)
    teacher = torch.randn(shape, requires_grad=True)
    loss_fn(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


@pytest.mark.parametrize('loss_fn', [
    lambda s, t: dkd_loss(s, t, torch.tensor([0, 1])), dist_loss])
def test_logit_losses_reject_other_class_counts(loss_fn):
    with pytest.raises(ValueError, match='same classes'):
        loss_fn(torch.randn(2, 3), torch.randn(2, 4))
