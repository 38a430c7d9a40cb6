"""The classification model zoo: every registered network against its tap table.

Each network is built once (K = 7 classes), given non-trivial BN statistics, and run
in eval mode at 32x32 (CIFAR nets) or 64x64 (ImageNet nets).
"""
import copy
import functools

import pytest
import torch
from torch import nn

import tasks.classification  # noqa: F401  (registers the networks)
from kdbench.distill.taps import TapPoint, Taps
from kdbench.registry import MODELS

K = 7
CIFAR_NETS = ['resnet8', 'resnet14', 'resnet20', 'resnet32', 'resnet44', 'resnet56',
              'resnet110', 'resnet8x4', 'resnet32x4', 'wrn_16_2', 'wrn_40_1', 'wrn_40_2',
              'vgg8', 'vgg13', 'mobilenetv2_cifar', 'shufflenetv1', 'shufflenetv2',
              'resnet50_cifar']
IMAGENET_NETS = ['tv_resnet18', 'tv_resnet34', 'tv_resnet50', 'mobilenetv1']
ALL_NETS = CIFAR_NETS + IMAGENET_NETS

#: Parameters at the default class count (100 CIFAR, 1000 ImageNet); the KD literature
#: reports the same figures (e.g. WRN-40-2 2.25M, VGG13 9.46M, ShuffleV1 0.95M).
PARAMS = {'wrn_16_2': 703_284, 'wrn_40_1': 569_780, 'wrn_40_2': 2_255_156,
          'vgg8': 3_965_028, 'vgg13': 9_462_180, 'mobilenetv2_cifar': 812_836,
          'shufflenetv1': 949_258, 'shufflenetv2': 1_355_528, 'resnet50_cifar': 23_705_252,
          'resnet8x4': 1_233_540, 'resnet32x4': 7_433_860, 'mobilenetv1': 4_231_976}


def _size(name):
    return 32 if name in CIFAR_NETS else 64


@functools.lru_cache(maxsize=None)
def _built(name):
    """The network in eval mode with non-trivial BN statistics: random affine parameters,
    running statistics measured on a random batch, then perturbed (so eval differs from
    train mode while activations keep a sane scale in deep nets)."""
    torch.manual_seed(0)
    net = MODELS.build(dict(type=name, num_classes=K))
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0, 0.1)
            m.reset_running_stats()
            m.momentum = None           # cumulative average: the calibration batch's stats
        net.fc.bias.normal_(0, 1)
        net.train()(torch.randn(4, 3, _size(name), _size(name)))
        for m in bns:
            m.momentum = 0.1
            m.running_mean.add_(0.2 * m.running_var.sqrt() * torch.randn_like(m.running_mean))
            m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.7, 1.4))
    return net.eval()


def _input(name, n=2):
    torch.manual_seed(1)
    return torch.randn(n, 3, _size(name), _size(name))


def _spatial_points(net):
    return {k: p for k, p in net.tap_points.items() if p.param is None}


@functools.lru_cache(maxsize=None)
def _run(name):
    """One eval forward under :class:`Taps` on every non-param tap, plus a call counter
    per tapped module. Returns ``(logits, captured, calls)``."""
    net = _built(name)
    points = _spatial_points(net)
    modules = dict(net.named_modules())
    calls = {}
    counters = [modules[path].register_forward_hook(
        lambda m, a, o, path=path: calls.__setitem__(path, calls.get(path, 0) + 1))
        for path in {p.module for p in points.values()}]
    try:
        with torch.no_grad(), Taps(net, points) as taps:
            logits = net(_input(name))
        captured = taps.tensors()    # raises if a tapped tensor was modified in place
    finally:
        for handle in counters:
            handle.remove()
    return logits, captured, calls


def test_every_registered_classification_network_is_covered():
    registered = {name for name, builder in MODELS.module_dict.items()
                  if getattr(builder, '__module__', '').startswith('tasks.classification.models')}
    assert registered == set(ALL_NETS)


@pytest.mark.parametrize('name', ALL_NETS)
def test_forward_gives_logits(name):
    logits, captured, _ = _run(name)
    assert logits.shape == (2, K)
    assert torch.isfinite(logits).all()
    assert torch.equal(captured['logits'], logits)


@pytest.mark.parametrize('name', ALL_NETS)
def test_tap_table_matches_the_tensors(name):
    net = _built(name)
    table = net.tap_points
    assert {'stage1', 'last_stage', 'pre_pool', 'pre_logits', 'logits',
            'classifier'} <= set(table)
    modules = dict(net.named_modules())
    assert all(p.module in modules for p in table.values())
    _, captured, calls = _run(name)
    size = _size(name)
    for tap, point in _spatial_points(net).items():
        out = captured[tap]
        assert calls[point.module] == 1, f'{tap}: {point.module} called {calls[point.module]}x'
        assert out.shape[0] == 2 and out.shape[1] == point.channels, tap
        if point.stride is not None:
            assert out.shape[2:] == (size // point.stride, size // point.stride), tap
    stages = sorted(t for t in table if t.startswith('stage'))
    assert stages == [f'stage{i}' for i in range(1, len(stages) + 1)]
    assert table['last_stage'] == table[stages[-1]]
    assert table['pre_pool'].stride is not None
    assert table['pre_logits'] == TapPoint('avgpool', table['pre_pool'].channels)
    assert table['logits'].module == 'fc' and table['logits'].channels == K
    classifier = table['classifier']
    assert classifier.module == 'fc' and classifier.param == 'weight'
    assert net.fc.weight.shape == (K, table['pre_pool'].channels)
    assert net.fc.bias is not None and isinstance(net.avgpool, nn.AdaptiveAvgPool2d)


@pytest.mark.parametrize('name', ALL_NETS)
def test_cams_of_pre_pool_average_to_the_logits(name):
    """CAT-KD's identity: GAP(sum_c W[k, c] F_c) + b_k == logit_k for F = pre_pool."""
    net = _built(name)
    logits, captured, _ = _run(name)
    pre_pool = captured['pre_pool']
    cams = torch.einsum('nchw,kc->nkhw', pre_pool, net.fc.weight)
    assert torch.allclose(cams.mean((2, 3)) + net.fc.bias, logits, atol=1e-4, rtol=0)
    assert torch.allclose(captured['pre_logits'].flatten(1), pre_pool.mean((2, 3)), atol=1e-5)


@pytest.mark.parametrize('name', ALL_NETS)
def test_pre_pool_is_post_activation(name):
    _, captured, _ = _run(name)
    assert captured['pre_pool'].min() >= 0
    assert (captured['pre_pool'] > 0).any()


@pytest.mark.parametrize('name', ALL_NETS)
def test_taps_survive_a_training_forward_and_backward(name):
    """Train mode (batch BN statistics): no op modifies a tapped tensor in place, and the
    loss backpropagates through every tapped feature."""
    net = copy.deepcopy(_built(name)).train()
    points = _spatial_points(net)
    with Taps(net, points) as taps:
        logits = net(_input(name))
    feats = taps.tensors()
    assert all(t.requires_grad for t in feats.values())
    (logits.sum() + sum(f.mean() for f in feats.values())).backward()
    assert net.fc.weight.grad is not None


# torchvision's ResNets are used unmodified: their ReLU(inplace=True) acts before the tapped
# outputs, which the Taps tests above check.
@pytest.mark.parametrize('name', [n for n in ALL_NETS if not n.startswith('tv_')])
def test_no_inplace_activations(name):
    net = _built(name)
    assert [path for path, m in net.named_modules() if getattr(m, 'inplace', False)] == []


@pytest.mark.parametrize('name', sorted(PARAMS))
def test_parameter_counts_match_the_literature(name):
    net = MODELS.build(dict(type=name))
    expected_classes = 1000 if name in IMAGENET_NETS else 100
    assert net.fc.out_features == expected_classes
    assert sum(p.numel() for p in net.parameters()) == PARAMS[name]


def test_cifar_pre_pool_resolutions():
    """The CAM resolution each CIFAR student/teacher gives at 32x32 (CAT-KD pools it to r)."""
    expected = {'wrn_40_2': 8, 'vgg13': 4, 'vgg8': 4, 'mobilenetv2_cifar': 2,
                'shufflenetv1': 4, 'shufflenetv2': 4, 'resnet50_cifar': 4, 'resnet32x4': 8}
    got = {name: _run(name)[1]['pre_pool'].shape[-1] for name in expected}
    assert got == expected


def test_vgg_optional_pool_after_block3():
    from tasks.classification.models.vgg import VGG, VGG_CFGS
    net = VGG(VGG_CFGS['vgg8'], num_classes=K, pool_block3=True).eval()
    assert net.tap_points['pre_pool'].stride == 16
    with torch.no_grad(), Taps(net, {'pre_pool': net.tap_points['pre_pool']}) as taps:
        net(torch.randn(1, 3, 64, 64))
    assert taps['pre_pool'].shape == (1, 512, 4, 4)


def test_mobilenetv1_loads_local_weights(tmp_path):
    torch.manual_seed(3)
    reference = MODELS.build(dict(type='mobilenetv1', num_classes=K))
    path = tmp_path / 'mobilenetv1.pth'
    torch.save(reference.state_dict(), path)
    torch.manual_seed(0)
    net = MODELS.build(dict(type='mobilenetv1', num_classes=K, weights=str(path)))
    for key, value in reference.state_dict().items():
        assert torch.equal(net.state_dict()[key], value), key
    with pytest.raises(RuntimeError, match='fc.weight'):
        MODELS.build(dict(type='mobilenetv1', num_classes=K + 1, weights=str(path)))
