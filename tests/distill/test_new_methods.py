"""The registered DKD, DIST, CWD and FitNet modules: weights, DKD's warm-up from the
training progress, dense labels, connectors and regressors sized from the taps."""
import pytest
import torch

from kdbench.distill.base import TrainingProgress
from kdbench.distill.fitnet import ConvReg
from kdbench.distill.functional import cwd_loss, dist_loss, dkd_loss, hint_loss
from kdbench.distill.taps import TapPoint
from kdbench.registry import DISTILL_METHODS


def _build(kind, **kwargs):
    return DISTILL_METHODS.build(dict(type=kind, **kwargs))


def _logits(seed=0, shape=(4, 5)):
    torch.manual_seed(seed)
    return torch.randn(shape), torch.randn(shape)


@pytest.mark.parametrize('epoch, factor', [(1, 1 / 20), (10, 0.5), (20, 1.0), (240, 1.0)])
def test_dkd_warms_up_over_epochs_counted_from_one(epoch, factor):
    s, t = _logits()
    label = torch.tensor([0, 1, 2, 3])
    dkd = _build('DKD', beta=6.0)
    dkd.progress = TrainingProgress(epoch, (epoch - 1) * 10, 240, 2400)
    out = dkd({'logits': s}, {'logits': t}, dict(label=label))['loss_dkd']
    assert out.item() == pytest.approx(factor * dkd_loss(s, t, label, 1.0, 6.0, 4.0).item(),
                                       rel=1e-6)


def test_dkd_without_progress_applies_the_full_weight():
    s, t = _logits()
    label = torch.tensor([4, 1, 2, 3])
    dkd = _build('DKD', alpha=0.5, beta=2.0, temperature=1.0, warmup=5, loss_weight=3.0)
    with pytest.warns(UserWarning, match='without its warm-up'):
        out = dkd({'logits': s}, {'logits': t}, dict(label=label))['loss_dkd']
    assert out.item() == pytest.approx(3.0 * dkd_loss(s, t, label, 0.5, 2.0, 1.0).item())


def test_dkd_dense_reads_labels_and_ignores_pixels():
    s, t = _logits(shape=(2, 3, 4, 4))
    label = torch.randint(0, 3, (2, 8, 8))
    label[:, :4] = 255
    dkd = _build('DKD', temperature=1.0, ignore_index=255)
    dkd.progress = TrainingProgress(30, 0, 240, 2400)          # past the warm-up
    out = dkd({'logits': s}, {'logits': t}, dict(label=label))['loss_dkd']
    assert out.item() == pytest.approx(
        dkd_loss(s, t, label, 1.0, 8.0, 1.0, ignore_index=255).item())


def test_dist_method_applies_the_outer_weight():
    s, t = _logits()
    out = _build('DIST', temperature=4.0)({'logits': s}, {'logits': t})['loss_dist']
    assert out.item() == pytest.approx(2.0 * dist_loss(s, t, temperature=4.0).item())


@pytest.mark.parametrize('kind', ['DKD', 'DIST'])
def test_logit_methods_reject_other_class_counts(kind):
    with pytest.raises(ValueError, match=r"'logits' has 10 classes but the teacher's has 5"):
        _build(kind).bind({'logits': TapPoint('fc', 10)}, {'logits': TapPoint('fc', 5)})


def test_cwd_on_logit_maps_has_no_connector():
    cwd = _build('CWD')
    cwd.bind({'logits': TapPoint('head', 21, 4)}, {'logits': TapPoint('head', 21, 4)})
    assert not list(cwd.parameters())
    s, t = _logits(shape=(2, 21, 4, 4))
    out = cwd({'logits': s}, {'logits': t})['loss_cwd']
    assert out.item() == pytest.approx(3.0 * cwd_loss(s, t, 4.0).item())


def test_cwd_on_features_aligns_channels_with_a_trained_1x1_conv():
    cwd = _build('CWD', temperature=1.0, loss_weight=5.0, taps=('last_stage',))
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
        _build('CWD').bind({'logits': TapPoint('fc', 10)}, {'logits': TapPoint('fc', 10)})


@pytest.mark.parametrize('s_stride, t_stride, conv_type, s_side, t_side', [
    (2, 2, torch.nn.Conv2d, 8, 8),            # same size: 1x1 conv
    (2, 4, torch.nn.Conv2d, 8, 4),            # student twice as large: 3x3 stride 2
    (4, 2, torch.nn.ConvTranspose2d, 4, 8),   # student half as large: transposed conv
])
def test_fitnet_regressor_maps_the_student_to_the_teacher_hint(s_stride, t_stride, conv_type,
                                                               s_side, t_side):
    fitnet = _build('FitNet')
    fitnet.bind({'hint': TapPoint('layer2', 8, s_stride)},
                {'hint': TapPoint('layer2', 32, t_stride)})
    conv, bn, relu = fitnet.regressor
    assert type(conv) is conv_type and isinstance(bn, torch.nn.BatchNorm2d)
    assert isinstance(relu, torch.nn.ReLU)
    s, t = torch.randn(2, 8, s_side, s_side), torch.randn(2, 32, t_side, t_side)
    out = fitnet({'hint': s}, {'hint': t})['loss_fitnet']
    assert out.item() == pytest.approx(100 * hint_loss(fitnet.regressor(s), t).item(),
                                       rel=1e-5)
    out.backward()
    assert conv.weight.grad.abs().sum() > 0


def test_fitnet_rejects_other_size_ratios_and_non_spatial_taps():
    with pytest.raises(ValueError, match='factor of 2'):
        ConvReg(8, 8, 1, 4)
    with pytest.raises(ValueError, match='spatial tap'):
        _build('FitNet', taps=('logits',)).bind({'logits': TapPoint('fc', 10)},
                                                {'logits': TapPoint('fc', 10)})


@pytest.mark.parametrize('kind', ['DKD', 'DIST', 'CWD', 'FitNet'])
def test_one_tap_only(kind):
    with pytest.raises(ValueError, match='exactly one'):
        _build(kind, taps=('logits', 'last_stage'))


def test_classification_hint_tap_is_feature_index_two():
    """MDistiller's hint (index 2): the second stage after the stem; VGG's block2."""
    import tasks.classification  # noqa: F401
    from kdbench.registry import MODELS
    expected = {'resnet32x4': 'layer2', 'wrn_16_2': 'block2', 'vgg8': 'block2',
                'mobilenetv2_cifar': 'stage2', 'shufflenetv1': 'layer2'}
    for arch, module in expected.items():
        net = MODELS.build(dict(type=arch, num_classes=100))
        assert net.tap_points['hint'].module == module, arch
