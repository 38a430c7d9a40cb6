"""AT: attention_map, at_loss and the registered AT method."""
import math

import pytest
import torch
import torch.nn.functional as F

from kdbench.distill.functional import at_loss, attention_map
from kdbench.registry import DISTILL_METHODS


def _at(**kwargs):
    return DISTILL_METHODS.build(dict(type='AT', **kwargs))


# ----------------------------------------------------------------------------- attention_map

def test_attention_map_hand_computed():
    # Two channels of a 2x2 map; p=2 squares (the sign of -1 disappears), then channel mean:
    # c0^2 = [1, 0, 0, 0], c1^2 = [1, 0, 0, 4] -> mean [1, 0, 0, 2] -> / sqrt(5).
    feat = torch.tensor([[[[-1.0, 0.0], [0.0, 0.0]],
                          [[1.0, 0.0], [0.0, 2.0]]]])
    expected = torch.tensor([[1.0, 0.0, 0.0, 2.0]]) / math.sqrt(5)
    assert torch.allclose(attention_map(feat), expected, atol=1e-6)


def test_attention_map_shape_unit_norm_and_p():
    torch.manual_seed(0)
    feat = torch.rand(3, 5, 4, 6) + 0.1
    amap = attention_map(feat)
    assert amap.shape == (3, 24)
    assert torch.allclose(amap.norm(dim=1), torch.ones(3), atol=1e-6)
    # p=1 on non-negative features: the normalised channel mean.
    assert torch.allclose(attention_map(feat, p=1),
                          F.normalize(feat.mean(1).flatten(1), dim=1), atol=1e-6)


def test_attention_map_rejects_non_4d():
    with pytest.raises(ValueError, match=r'\(2, 3\)'):
        attention_map(torch.randn(2, 3))


# ----------------------------------------------------------------------------- at_loss

def test_identical_and_positively_scaled_features_give_zero_loss():
    torch.manual_seed(0)
    feat = torch.randn(2, 8, 4, 4)
    assert at_loss(feat, feat.clone()).item() == pytest.approx(0, abs=1e-7)
    assert at_loss(feat, 7.5 * feat).item() == pytest.approx(0, abs=1e-7)
    # Normalisation is per sample: a different positive scale per sample is still zero.
    scale = torch.tensor([0.01, 100.0]).view(2, 1, 1, 1)
    assert at_loss(feat * scale, feat).item() == pytest.approx(0, abs=1e-7)
    # ... whereas scaling one channel only changes the map.
    other = feat.clone()
    other[:, 0] *= 5
    assert at_loss(other, feat).item() > 1e-4


def test_at_loss_hand_computed_1x1x2x2():
    # Student [[1, 0], [0, 0]] -> squared [1, 0, 0, 0] -> normalised [1, 0, 0, 0].
    # Teacher [[1, 1], [1, 1]] -> squared [1, 1, 1, 1] -> normalised [1/2, 1/2, 1/2, 1/2].
    # Difference [1/2, -1/2, -1/2, -1/2]; squares 1/4 each; mean over 4 cells = 1/4.
    student = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    teacher = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]]])
    assert at_loss(student, teacher).item() == pytest.approx(0.25, rel=1e-6)


def test_at_loss_hand_computed_different_channel_counts():
    # Student (2 channels): map [1, 0, 0, 2] / sqrt(5) (see test_attention_map_hand_computed).
    # Teacher (1 channel) [[0, 0], [0, 3]] -> squared [0, 0, 0, 9] -> normalised [0, 0, 0, 1].
    # Difference [1/sqrt5, 0, 0, 2/sqrt5 - 1]; mean of squares over 4 cells:
    # (1/5 + (2/sqrt5 - 1)^2) / 4 = (0.2 + 0.0111456) / 4 = 0.0527864
    student = torch.tensor([[[[-1.0, 0.0], [0.0, 0.0]],
                             [[1.0, 0.0], [0.0, 2.0]]]])
    teacher = torch.tensor([[[[0.0, 0.0], [0.0, 3.0]]]])
    expected = (1 / 5 + (2 / math.sqrt(5) - 1) ** 2) / 4
    assert expected == pytest.approx(0.0527864, abs=1e-7)
    assert at_loss(student, teacher).item() == pytest.approx(expected, rel=1e-5)


def test_at_loss_mean_over_batch_and_cells():
    # Sample 0 is the 0.25 case above, sample 1 is identical maps (0): mean 0.125.
    student = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[2.0, 1.0], [0.0, 1.0]]]])
    teacher = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[2.0, 1.0], [0.0, 1.0]]]])
    assert at_loss(student, teacher).item() == pytest.approx(0.125, rel=1e-6)


def test_larger_map_is_pooled_to_the_smaller():
    torch.manual_seed(0)
    big, small = torch.randn(2, 4, 8, 8), torch.randn(2, 6, 4, 4)
    pooled = F.avg_pool2d(big, 2)
    expected = at_loss(pooled, small).item()
    assert at_loss(big, small).item() == pytest.approx(expected, rel=1e-6)
    assert at_loss(small, big).item() == pytest.approx(expected, rel=1e-6)
    assert at_loss(big, pooled).item() == pytest.approx(0, abs=1e-7)


def test_each_spatial_dim_is_pooled_to_the_smaller_one():
    torch.manual_seed(0)
    tall, wide = torch.randn(2, 3, 8, 4), torch.randn(2, 5, 4, 8)
    expected = at_loss(F.adaptive_avg_pool2d(tall, (4, 4)), F.adaptive_avg_pool2d(wide, (4, 4)))
    assert at_loss(tall, wide).item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize('s_shape, t_shape', [
    ((2, 4, 4, 4), (3, 4, 4, 4)),     # batch differs
    ((2, 4, 16), (2, 4, 4, 4)),       # not 4-D
])
def test_at_loss_bad_shapes_raise_value_error_naming_them(s_shape, t_shape):
    with pytest.raises(ValueError) as info:
        at_loss(torch.randn(*s_shape), torch.randn(*t_shape))
    assert str(s_shape) in str(info.value) and str(t_shape) in str(info.value)


def test_at_loss_gradient_reaches_student():
    torch.manual_seed(0)
    student = torch.randn(2, 4, 4, 4, requires_grad=True)
    teacher = torch.randn(2, 8, 2, 2)
    at_loss(student, teacher).backward()
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- AT method

def test_at_method_sums_taps_and_applies_beta():
    torch.manual_seed(0)
    s = {'stage1': torch.randn(2, 4, 8, 8), 'stage3': torch.randn(2, 8, 2, 2)}
    t = {'stage1': torch.randn(2, 16, 8, 8), 'stage3': torch.randn(2, 32, 4, 4)}
    at = _at(taps=('stage1', 'stage3'), loss_weight=1000.0)
    out = at(s, t)
    assert set(out) == {'loss_at'}
    expected = 1000.0 * (at_loss(s['stage1'], t['stage1']) + at_loss(s['stage3'], t['stage3']))
    assert out['loss_at'].item() == pytest.approx(expected.item(), rel=1e-6)


def test_at_method_defaults_and_name():
    at = _at()
    assert at.taps == ('last_stage',) and at.loss_weight == 1000.0 and at.p == 2
    feat = torch.rand(2, 4, 4, 4)
    at.name = 'attention'
    out = at({'last_stage': feat}, {'last_stage': 3 * feat})
    assert set(out) == {'loss_attention'}
    assert out['loss_attention'].item() == pytest.approx(0, abs=1e-5)


def test_at_method_weight_scales_and_gradient_reaches_student():
    torch.manual_seed(0)
    s = torch.randn(2, 4, 4, 4, requires_grad=True)
    t = torch.randn(2, 4, 4, 4)
    out = _at(loss_weight=3.0)({'last_stage': s}, {'last_stage': t})
    assert out['loss_at'].item() == pytest.approx(3.0 * at_loss(s, t).item(), rel=1e-6)
    out['loss_at'].backward()
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_at_method_needs_a_tap():
    with pytest.raises(ValueError, match='at least one tap'):
        _at(taps=())


@pytest.mark.parametrize('p', [0, -1.5])
def test_non_positive_p_is_refused_at_build(p):
    with pytest.raises(ValueError, match=rf'AT p must be > 0.*p={p}.*model\.methods'):
        DISTILL_METHODS.build(dict(type='AT', p=p))
