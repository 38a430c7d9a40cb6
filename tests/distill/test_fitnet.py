"""FitNet: hint_loss is the mean squared error; the registered module's regressor sized from
the taps (1x1 conv, strided conv or transposed conv, + BN + ReLU) and the classification
networks' hint tap."""
import pytest
import torch
from method_helpers import build_method

from kdbench.distill.fitnet import ConvReg
from kdbench.distill.functional import hint_loss
from kdbench.distill.taps import TapPoint


def test_hint_loss_is_the_mean_squared_error():
    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    t = torch.tensor([[[[0.0, 2.0], [5.0, 4.0]]]])
    assert hint_loss(s, t).item() == pytest.approx((1 + 0 + 4 + 0) / 4)
    assert hint_loss(s, s.clone()).item() == 0
    with pytest.raises(ValueError, match='differ in shape'):
        hint_loss(s, torch.zeros(1, 2, 2, 2))


@pytest.mark.parametrize('s_stride, t_stride, conv_type, s_side, t_side', [
    (2, 2, torch.nn.Conv2d, 8, 8),            # same size: 1x1 conv
    (2, 4, torch.nn.Conv2d, 8, 4),            # student twice as large: 3x3 stride 2
    (4, 2, torch.nn.ConvTranspose2d, 4, 8),   # student half as large: transposed conv
])
def test_fitnet_regressor_maps_the_student_to_the_teacher_hint(s_stride, t_stride, conv_type,
                                                               s_side, t_side):
    fitnet = build_method('FitNet')
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
        build_method('FitNet', taps=('logits',)).bind({'logits': TapPoint('fc', 10)},
                                                      {'logits': TapPoint('fc', 10)})


def test_classification_hint_tap_is_feature_index_two():
    """MDistiller's hint (index 2): the second stage after the stem; VGG's block2."""
    import tasks.classification  # noqa: F401
    from kdbench.registry import MODELS
    expected = {'resnet32x4': 'layer2', 'wrn_16_2': 'block2', 'vgg8': 'block2',
                'mobilenetv2_cifar': 'stage2', 'shufflenetv1': 'layer2'}
    for arch, module in expected.items():
        net = MODELS.build(dict(type=arch, num_classes=100))
        assert net.tap_points['hint'].module == module, arch
