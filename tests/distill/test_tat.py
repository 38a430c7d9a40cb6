"""TaT: attention, patch groups, anchors, the three losses and the TaT method."""
import glob
import math
import os

import pytest
import torch
import torch.nn.functional as F
from shared_setup import ROOT

from kdbench.distill.functional import (anchor_points, patch_group, tat_anchor_loss,
                                        tat_attention, tat_loss, tat_patch_group_loss)
from kdbench.distill.taps import TapPoint
from kdbench.registry import DISTILL_METHODS, MODELS


def _naive_attention(query, key, value):
    """Per-sample, per-position loop: out[:, i] = sum_j softmax_j(<q_i, k_j>) v_j."""
    n, c, h, w = query.shape
    out = torch.zeros(n, value.shape[1], h * w, dtype=torch.float64)
    for b in range(n):
        q = query[b].reshape(c, -1).double()
        k = key[b].reshape(c, -1).double()
        v = value[b].reshape(value.shape[1], -1).double()
        for i in range(h * w):
            logits = torch.stack([q[:, i] @ k[:, j] for j in range(k.shape[1])])
            weights = torch.exp(logits - logits.max())
            weights = weights / weights.sum()
            out[b, :, i] = (v * weights).sum(1)
    return out.reshape(n, value.shape[1], h, w)


def _rand(*shape, seed=0):
    torch.manual_seed(seed)
    return torch.randn(*shape)


# ----------------------------------------------------------------------------- tat_attention

def test_tat_attention_hand_computed_1x1x1x2():
    # One channel, two positions: q = [1, 2], k = [3, 4], v = [5, 6].
    # Position 0: logits [3, 4] -> weights [s(-1), s(1)] (s = sigmoid), out = 5 + s(1).
    # Position 1: logits [6, 8] -> weights [s(-2), s(2)], out = 5 + s(2). No 1/sqrt(C).
    q, k, v = (torch.tensor([[[[a, b]]]]) for a, b in ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0)))
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = torch.tensor([[[[5 + sig(1), 5 + sig(2)]]]])
    out = tat_attention(q, k, v)
    assert out.shape == (1, 1, 1, 2) and out.dtype == torch.float32
    torch.testing.assert_close(out, expected)
    assert out[0, 0, 0, 0].item() == pytest.approx(5.7310586, abs=1e-6)


@pytest.mark.parametrize('shape, value_channels', [((3, 4, 3, 5), 4), ((2, 3, 2, 2), 6)])
def test_tat_attention_matches_naive_loop(shape, value_channels):
    query, key = _rand(*shape, seed=1), _rand(*shape, seed=2)
    value = _rand(shape[0], value_channels, *shape[2:], seed=3)
    out = tat_attention(query, key, value)
    assert out.shape == (shape[0], value_channels, *shape[2:])
    torch.testing.assert_close(out.double(), _naive_attention(query, key, value),
                               atol=1e-5, rtol=1e-5)


def test_tat_attention_softmax_runs_over_keys():
    query, value = _rand(2, 3, 2, 3, seed=4), _rand(2, 5, 2, 3, seed=5)
    # Constant keys: every query weighs all key positions equally -> the mean value.
    out = tat_attention(query, torch.ones(2, 3, 2, 3), value)
    expected = value.mean((2, 3), keepdim=True).expand_as(out)
    torch.testing.assert_close(out, expected)
    # Very peaked logits: one-hot keys matching one-hot queries select the own position.
    eye = 50 * torch.eye(4).reshape(1, 4, 2, 2)
    v = _rand(1, 7, 2, 2, seed=6)
    torch.testing.assert_close(tat_attention(eye, eye, v), v, atol=1e-5, rtol=1e-5)


def test_tat_attention_runs_in_fp32_under_autocast():
    # Logits sum C products of large features; the matmuls must not run in bf16/fp16.
    query, key, value = (_rand(2, 8, 3, 3, seed=s).bfloat16() * 10 for s in (7, 8, 9))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = tat_attention(query, key, value)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, tat_attention(query.float(), key.float(), value.float()))


@pytest.mark.parametrize('shapes', [
    ((2, 4, 3, 3), (2, 5, 3, 3), (2, 4, 3, 3)),      # query/key channels differ
    ((2, 4, 3, 3), (2, 4, 3, 3), (2, 4, 2, 3)),      # value positions differ from the key's
    ((2, 4, 9), (2, 4, 3, 3), (2, 4, 3, 3)),         # not 4-D
])
def test_tat_attention_bad_shapes_are_named(shapes):
    with pytest.raises(ValueError) as info:
        tat_attention(*(torch.randn(*s) for s in shapes))
    assert all(str(s) in str(info.value) for s in shapes)


# ----------------------------------------------------------------------------- tat_loss

def test_tat_loss_is_the_mean_squared_error_of_the_attention_output():
    query, key, value, target = (_rand(2, 3, 2, 2, seed=s) for s in (10, 11, 12, 13))
    expected = (_naive_attention(query, key, value) - target.double()).pow(2).mean()
    assert tat_loss(query, key, value, target).item() == pytest.approx(expected.item(),
                                                                       rel=1e-5)
    # Hand case above: out = [5 + s(1), 5 + s(2)] against the target [5, 5]:
    # mean of s(1)^2 and s(2)^2.
    q, k, v = (torch.tensor([[[[a, b]]]]) for a, b in ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0)))
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert tat_loss(q, k, v, torch.full((1, 1, 1, 2), 5.0)).item() == \
        pytest.approx((sig(1) ** 2 + sig(2) ** 2) / 2, rel=1e-6)


def test_tat_loss_zero_when_attention_reproduces_the_target():
    eye = 50 * torch.eye(4).reshape(1, 4, 2, 2)
    target = _rand(1, 4, 2, 2, seed=14)
    assert tat_loss(eye, eye, target, target).item() == pytest.approx(0, abs=1e-10)


def test_tat_loss_refuses_a_target_of_another_shape():
    x = torch.randn(2, 3, 2, 2)
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\)'):
        tat_loss(x, x, x, torch.randn(2, 3, 4, 4))


# ----------------------------------------------------------------------------- patch_group

def test_patch_group_channel_order_by_hand():
    # x[0, c, i, j] = 16c + 4i + j. Patches of 2x2 in raster order: p0 top-left, p1
    # top-right, p2 bottom-left, p3 bottom-right; channel = patch * C + c; 2 groups of 2.
    x = torch.arange(32.0).reshape(1, 2, 4, 4)
    out = patch_group(x, (2, 2), groups=2)
    assert out.shape == (1, 2, 4, 2, 2)
    expected = torch.tensor([
        [[[0, 1], [4, 5]], [[16, 17], [20, 21]],          # p0 c0, p0 c1
         [[2, 3], [6, 7]], [[18, 19], [22, 23]]],         # p1 c0, p1 c1
        [[[8, 9], [12, 13]], [[24, 25], [28, 29]],        # p2 c0, p2 c1
         [[10, 11], [14, 15]], [[26, 27], [30, 31]]],     # p3 c0, p3 c1
    ], dtype=torch.float32)
    assert torch.equal(out[0], expected)
    # One group: the same 8 channels in one block; four groups: one patch each.
    assert torch.equal(patch_group(x, 2, 1)[0, 0], expected.reshape(8, 2, 2))
    assert torch.equal(patch_group(x, (2, 2), 4)[0, 3], expected[1, 2:])


def test_patch_group_non_square_and_remainder_dropped():
    # 5x7 map, 2x3 patches of 2x2: the last row and the last column are dropped.
    x = _rand(2, 3, 5, 7, seed=15)
    out = patch_group(x, (2, 3), groups=3)
    assert out.shape == (2, 3, 3 * 6 // 3, 2, 2)
    cropped = x[:, :, :4, :6]
    for i in range(2):
        for j in range(3):
            p = i * 3 + j
            block = out.reshape(2, 18, 2, 2)[:, p * 3:(p + 1) * 3]
            assert torch.equal(block, cropped[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2])


def test_patch_group_errors():
    x = torch.randn(1, 2, 4, 4)
    with pytest.raises(ValueError, match=r'n\*m = 2\*2 = 4 .*groups=3'):
        patch_group(x, (2, 2), 3)
    with pytest.raises(ValueError, match=r'patches=\(5, 1\) is larger than the 4x4'):
        patch_group(x, (5, 1), 1)
    with pytest.raises(ValueError, match='patches must be a positive int'):
        patch_group(x, (0, 2), 1)


# ----------------------------------------------------------------------------- anchor_points

def test_anchor_points_are_average_pooling_with_stride_equal_kernel():
    x = _rand(2, 3, 7, 9, seed=16)
    torch.testing.assert_close(anchor_points(x, 2), F.avg_pool2d(x, 2, 2))
    out = anchor_points(x, (3, 4))
    assert out.shape == (2, 3, 2, 2)
    torch.testing.assert_close(out[:, :, 1, 0], x[:, :, 3:6, 0:4].mean((2, 3)))
    assert torch.equal(anchor_points(x, 1), x)
    with pytest.raises(ValueError, match='larger than the 7x9'):
        anchor_points(x, (8, 1))


# ----------------------------------------------------------------------------- grouped losses

def _naive_patch_group_loss(query, key, value, target, patches, groups):
    """Loops over samples and groups; each group concatenates its patches channel-wise."""
    (n, m), (batch, _, height, width) = patches, query.shape
    h, w = height // n, width // m
    per_group = n * m // groups

    def group(x, b, g):
        cells = []
        for p in range(g * per_group, (g + 1) * per_group):
            i, j = divmod(p, m)
            cells.append(x[b, :, i * h:(i + 1) * h, j * w:(j + 1) * w])
        return torch.cat(cells)[None]

    errors = []
    for b in range(batch):
        for g in range(groups):
            q, k, v, t = (group(x, b, g) for x in (query, key, value, target))
            errors.append((_naive_attention(q, k, v) - t.double()).pow(2).flatten())
    return torch.cat(errors).mean()


@pytest.mark.parametrize('patches, groups', [((2, 2), 2), ((2, 3), 6), ((3, 2), 1),
                                             ((2, 2), 4)])
def test_patch_group_loss_matches_a_loop_over_groups(patches, groups):
    query, key, value, target = (_rand(2, 3, 7, 6, seed=s) for s in (17, 18, 19, 20))
    expected = _naive_patch_group_loss(query, key, value, target, patches, groups)
    loss = tat_patch_group_loss(query, key, value, target, patches, groups)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_one_patch_one_group_and_unit_anchor_kernel_reduce_to_tat_loss():
    query, key, value, target = (_rand(2, 4, 3, 5, seed=s) for s in (21, 22, 23, 24))
    plain = tat_loss(query, key, value, target)
    torch.testing.assert_close(tat_patch_group_loss(query, key, value, target, (1, 1), 1),
                               plain)
    torch.testing.assert_close(tat_anchor_loss(query, key, value, target, 1), plain)
    pooled = [F.avg_pool2d(x, (1, 2), (1, 2)) for x in (query, key, value, target)]
    torch.testing.assert_close(tat_anchor_loss(query, key, value, target, (1, 2)),
                               tat_loss(*pooled))


# ----------------------------------------------------------------------------- the method

def _tat(**kwargs):
    return DISTILL_METHODS.build(dict(type='TaT', **kwargs))


def _bound(c_s=4, c_t=4, **kwargs):
    method = _tat(**kwargs)
    method.bind({'last_stage': TapPoint('s', c_s, 4)}, {'last_stage': TapPoint('t', c_t, 4)})
    return method


def test_defaults_per_mode():
    glob = _tat()
    assert glob.mode == 'global' and glob.taps == ('last_stage',)
    assert glob.kinds == dict(theta='conv3x3_bn', phi='identity', gamma='conv3x3_bn')
    assert glob.loss_weight == 0.2
    hier = _tat(mode='hierarchical')
    assert hier.kinds == dict(theta='conv1x1_bn', phi='conv1x1_bn', gamma='conv1x1_bn')
    assert (hier.loss_weight, hier.delta, hier.zeta) == (1.0, 0.1, 0.04)
    assert (hier.patches, hier.groups, hier.anchors, hier.kernel_size) == \
        ((16, 16), 64, (32, 32), None)
    custom = _tat(mode='hierarchical', patches=32, groups=512, kernel_size=4, delta=0.6,
                  zeta=0.6, phi='identity')
    assert (custom.patches, custom.kernel_size, custom.anchors) == ((32, 32), (4, 4), None)
    assert custom.kinds['phi'] == 'identity' and custom.kinds['theta'] == 'conv1x1_bn'


def test_argument_errors_list_the_choices():
    with pytest.raises(ValueError, match=r"\('global', 'hierarchical'\).*'local'"):
        _tat(mode='local')
    with pytest.raises(ValueError, match=r"gamma must be one of \('identity', 'conv1x1_bn', "
                                         r"'conv3x3_bn'\), got 'linear'"):
        _tat(gamma='linear')
    with pytest.raises(ValueError, match=r"\['patches', 'anchors'\] only apply"):
        _tat(patches=4, anchors=2)
    with pytest.raises(ValueError, match='either kernel_size or anchors'):
        _tat(mode='hierarchical', kernel_size=2, anchors=8)
    with pytest.raises(ValueError, match='groups=3 must divide'):
        _tat(mode='hierarchical', patches=4, groups=3)
    with pytest.raises(ValueError, match='one feature tap'):
        _tat(taps=('stage2', 'stage3'))


def test_identity_with_mismatched_channels_names_them_at_bind():
    with pytest.raises(ValueError, match="theta='identity' cannot map 64 channels to 256"):
        _bound(64, 256, theta='identity')
    with pytest.raises(ValueError, match="gamma='identity' cannot map 64 channels to 256"):
        _bound(64, 256, gamma='identity')
    method = _bound(64, 256, phi='identity')      # phi maps C_t -> C_t: always fine
    assert isinstance(method.phi, torch.nn.Identity)


def test_connectors_are_sized_from_the_tap_channels():
    method = _bound(8, 16, mode='hierarchical', theta='conv3x3_bn', phi='conv1x1_bn')
    assert method.theta[0].weight.shape == (16, 8, 3, 3) and method.theta[0].bias is None
    assert method.phi[0].weight.shape == (16, 16, 1, 1)
    assert method.gamma[0].weight.shape == (16, 8, 1, 1)
    assert all(isinstance(m[1], torch.nn.BatchNorm2d) and m[1].num_features == 16
               for m in (method.theta, method.phi, method.gamma))
    with pytest.raises(RuntimeError, match='bind'):
        _tat()({'last_stage': torch.randn(2, 4, 2, 2)}, {'last_stage': torch.randn(2, 4, 2, 2)})


@pytest.mark.parametrize('kwargs', [dict(phi='conv1x1_bn'),
                                    dict(mode='hierarchical', patches=2, groups=2, anchors=2)])
def test_gradients_reach_student_and_every_connector_never_the_teacher(kwargs):
    method = _bound(6, 8, **kwargs)
    method.name = 'tat'
    student = _rand(3, 6, 4, 4, seed=25).requires_grad_()
    teacher = _rand(3, 8, 4, 4, seed=26).requires_grad_()    # the method must not use it
    out = method({'last_stage': student}, {'last_stage': teacher})
    assert set(out) == {'loss_tat'} and out['loss_tat'].ndim == 0
    out['loss_tat'].backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None
    params = dict(method.named_parameters())
    assert {name.split('.')[0] for name in params} == {'theta', 'phi', 'gamma'}
    for name, param in params.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_method_equals_the_functional_losses_with_identity_connectors():
    ids = dict(theta='identity', phi='identity', gamma='identity')
    s, t = _rand(2, 4, 8, 8, seed=27), _rand(2, 4, 8, 8, seed=28)
    glob = _bound(**ids, loss_weight=0.5)
    loss = glob({'last_stage': s}, {'last_stage': t})['loss_tat']
    torch.testing.assert_close(loss, 0.5 * tat_loss(s, t, s, t))

    hier = _bound(mode='hierarchical', **ids, loss_weight=2.0, delta=0.3, zeta=0.7,
                  patches=(2, 4), groups=4, anchors=(4, 2))
    assert hier.anchor_kernel(8, 8) == (2, 4)
    expected = 2.0 * (0.3 * tat_patch_group_loss(s, t, s, t, (2, 4), 4)
                      + 0.7 * tat_anchor_loss(s, t, s, t, (2, 4)))
    torch.testing.assert_close(hier({'last_stage': s}, {'last_stage': t})['loss_tat'],
                               expected)
    with pytest.raises(ValueError, match=r'anchors=\(4, 2\) needs .* got 2x8'):
        hier.anchor_kernel(2, 8)
    kernel = _bound(mode='hierarchical', kernel_size=(3, 1))
    assert kernel.anchor_kernel(8, 8) == (3, 1)


def test_student_embeddings_are_resized_to_the_teacher_size():
    ids = dict(theta='identity', phi='identity', gamma='identity')
    s, t = _rand(2, 4, 2, 3, seed=29), _rand(2, 4, 4, 6, seed=30)
    up = F.interpolate(s, size=(4, 6), mode='bilinear', align_corners=False)
    loss = _bound(**ids, loss_weight=1.0)({'last_stage': s}, {'last_stage': t})['loss_tat']
    torch.testing.assert_close(loss, tat_loss(up, t, up, t))
    # Convolutional connectors and the hierarchical mode work on mismatched maps too.
    student = s.clone().requires_grad_()
    out = _bound(mode='hierarchical', patches=2, groups=2, anchors=2)(
        {'last_stage': student}, {'last_stage': t})
    assert torch.isfinite(out['loss_tat'])
    out['loss_tat'].backward()
    assert student.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- in a Distiller

def test_connectors_train_and_are_saved_with_the_distiller(tiny_classifier_cfg, teacher_ckpt):
    teacher = tiny_classifier_cfg('resnet8x4', 10)      # last stage 256 ch vs 64 for resnet8
    cfg = dict(type='Distiller', student=tiny_classifier_cfg('resnet8', 10), teacher=teacher,
               teacher_ckpt=teacher_ckpt(teacher), student_loss_weight=0.1,
               methods=dict(tat=dict(type='TaT')))
    torch.manual_seed(0)
    distiller = MODELS.build(cfg)
    state = distiller.state_dict()
    method_keys = {k for k in state if k.startswith('methods.')}
    assert {'methods.tat.theta.0.weight', 'methods.tat.theta.1.running_mean',
            'methods.tat.gamma.0.weight', 'methods.tat.gamma.1.bias'} <= method_keys
    assert not any(k.startswith('methods.tat.phi') for k in state)     # identity by default
    assert state['methods.tat.theta.0.weight'].shape == (256, 64, 3, 3)
    assert not any(k.startswith('teacher.') for k in state)
    method_params = {id(p) for p in distiller.methods.parameters()}
    assert method_params <= {id(p) for p in distiller.parameters() if p.requires_grad}

    distiller.train()
    torch.manual_seed(1)
    losses = distiller(torch.randn(2, 3, 16, 16), dict(label=torch.tensor([1, 7])),
                       mode='loss')
    assert set(losses) == {'loss_cls', 'loss_tat'} and torch.isfinite(losses['loss_tat'])
    sum(losses.values()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in distiller.methods.parameters())
    assert all(p.grad is None for p in distiller.teacher.parameters())

    fresh = MODELS.build(cfg)
    fresh.load_state_dict(distiller.state_dict(), strict=True)
    torch.testing.assert_close(fresh.methods.tat.theta[0].weight,
                               distiller.methods.tat.theta[0].weight)


# ----------------------------------------------------------------------------- shipped configs

CONFIGS = sorted(glob.glob(os.path.join(ROOT, 'configs', 'cls', 'tat_*.py')))
# tat_kd_resnet34_resnet18_imagenet.py inherits the plain ImageNet TaT config: building the
# ImageNet pair once keeps this file fast (tests/test_configs.py builds both).
STEP_CONFIGS = [p for p in CONFIGS if not p.endswith('tat_resnet34_resnet18_imagenet.py')]


def test_the_configs_are_found():
    assert len(CONFIGS) == 15 and len(STEP_CONFIGS) == 14


@pytest.mark.parametrize('path', STEP_CONFIGS, ids=os.path.basename)
def test_shipped_config_takes_a_step_with_its_real_networks(path, config_step):
    def no_pretrained_file(model_cfg):
        if 'weights' in model_cfg['student']['net']:      # the pretrained ImageNet student
            assert model_cfg['student']['net']['weights'].endswith('resnet18-f37072fd.pth')
            model_cfg['student']['net']['weights'] = None
    distiller, losses = config_step(path, no_pretrained_file)
    tat = distiller.methods['tat']
    assert tat.kinds == dict(theta='conv3x3_bn', phi='identity', gamma='conv3x3_bn')
    assert {'loss_cls', 'loss_tat'} <= set(losses)
    assert torch.isfinite(losses['loss_tat']) and losses['loss_tat'] > 0
    assert all(p.grad is not None for p in tat.parameters())
    assert all(p.grad is None for p in distiller.teacher.parameters())
