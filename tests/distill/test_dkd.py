"""DKD: dkd_loss against a hand-written loop on tiny tensors (classification and dense
forms, ignored pixels, temperatures) and zeros where the maths says so; the registered
module's weights, its warm-up from the training progress and its dense labels."""
import pytest
import torch
from method_helpers import build_method, kl, random_logits, softmax

from kdbench.distill.base import TrainingProgress
from kdbench.distill.functional import dkd_loss


def _dkd_item(s, t, g, alpha, beta, temp):
    """One sample's (alpha * TCKD + beta * NCKD) * T^2, the class g removed exactly."""
    p_s, p_t = softmax([v / temp for v in s]), softmax([v / temp for v in t])
    tckd = kl([p_t[g], 1 - p_t[g]], [p_s[g], 1 - p_s[g]])
    others = [k for k in range(len(s)) if k != g]
    q_s = softmax([s[k] / temp for k in others])
    q_t = softmax([t[k] / temp for k in others])
    return (alpha * tckd + beta * kl(q_t, q_s)) * temp ** 2


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


@pytest.mark.parametrize('epoch, factor', [(1, 1 / 20), (10, 0.5), (20, 1.0), (240, 1.0)])
def test_dkd_warms_up_over_epochs_counted_from_one(epoch, factor):
    s, t = random_logits()
    label = torch.tensor([0, 1, 2, 3])
    dkd = build_method('DKD', beta=6.0)
    dkd.progress = TrainingProgress(epoch, (epoch - 1) * 10, 240, 2400)
    out = dkd({'logits': s}, {'logits': t}, dict(label=label))['loss_dkd']
    assert out.item() == pytest.approx(factor * dkd_loss(s, t, label, 1.0, 6.0, 4.0).item(),
                                       rel=1e-6)


def test_dkd_without_progress_applies_the_full_weight():
    s, t = random_logits()
    label = torch.tensor([4, 1, 2, 3])
    dkd = build_method('DKD', alpha=0.5, beta=2.0, temperature=1.0, warmup=5, loss_weight=3.0)
    with pytest.warns(UserWarning, match='without its warm-up'):
        out = dkd({'logits': s}, {'logits': t}, dict(label=label))['loss_dkd']
    assert out.item() == pytest.approx(3.0 * dkd_loss(s, t, label, 0.5, 2.0, 1.0).item())


def test_dkd_dense_reads_labels_and_ignores_pixels():
    s, t = random_logits(shape=(2, 3, 4, 4))
    label = torch.randint(0, 3, (2, 8, 8))
    label[:, :4] = 255
    dkd = build_method('DKD', temperature=1.0, ignore_index=255)
    dkd.progress = TrainingProgress(30, 0, 240, 2400)          # past the warm-up
    out = dkd({'logits': s}, {'logits': t}, dict(label=label))['loss_dkd']
    assert out.item() == pytest.approx(
        dkd_loss(s, t, label, 1.0, 8.0, 1.0, ignore_index=255).item())
