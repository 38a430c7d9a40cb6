"""CWD: cwd_loss against a hand-written loop over channels, zeros where the maths says so,
the teacher's resizing; the registered module on logit maps and on features (a trained 1x1
conv connector sized from the taps)."""
import pytest
import torch
from method_helpers import build_method, kl, random_logits, softmax

from kdbench.distill.functional import cwd_loss
from kdbench.distill.taps import TapPoint


def _cwd_loop(s, t, temp):
    n, c = s.shape[:2]
    total = 0.0
    for i in range(n):
        for j in range(c):
            p_s = softmax([v / temp for v in s[i, j].flatten().tolist()])
            p_t = softmax([v / temp for v in t[i, j].flatten().tolist()])
            total += kl(p_t, p_s)
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


def test_cwd_on_logit_maps_has_no_connector():
    cwd = build_method('CWD')
    cwd.bind({'logits': TapPoint('head', 21, 4)}, {'logits': TapPoint('head', 21, 4)})
    assert not list(cwd.parameters())
    s, t = random_logits(shape=(2, 21, 4, 4))
    out = cwd({'logits': s}, {'logits': t})['loss_cwd']
    assert out.item() == pytest.approx(3.0 * cwd_loss(s, t, 4.0).item())


def test_cwd_on_features_aligns_channels_with_a_trained_1x1_conv():
    cwd = build_method('CWD', temperature=1.0, loss_weight=5.0, taps=('last_stage',))
    cwd.bind({'last_stage': TapPoint('layer3', 8, 4)}, {'last_stage': TapPoint('layer4', 16, 4)})
    conv = cwd.connector
    assert isinstance(conv, torch.nn.Conv2d) and conv.kernel_size == (1, 1)
    assert (conv.in_channels, conv.out_channels) == (8, 16)
    s, t = torch.randn(2, 8, 4, 4), torch.randn(2, 16, 4, 4)
    out = cwd({'last_stage': s}, {'last_stage': t})['loss_cwd']
    assert out.item() == pytest.approx(5.0 * cwd_loss(conv(s), t, 1.0).item())
    out.backward()
    assert conv.weight.grad.abs().sum() > 0


def test_cwd_rejects_non_spatial_taps():
    with pytest.raises(ValueError, match='spatial tap'):
        build_method('CWD').bind({'logits': TapPoint('fc', 10)}, {'logits': TapPoint('fc', 10)})
