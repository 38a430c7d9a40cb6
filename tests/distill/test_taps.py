"""Taps: forward hooks capturing named module outputs, and resolve_taps errors."""
import pytest
import torch
from torch import nn

from kdbench.distill.taps import TapPoint, Taps, resolve_taps


class TinyNet(nn.Module):
    """conv -> ReLU(inplace) -> conv -> ReLU -> GAP; ``unused`` never runs."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.unused = nn.Linear(6, 2)
        self.tap_points = {
            'conv1': TapPoint('body.0', 4, 1),        # modified in place by body.1
            'relu1': TapPoint('body.1', 4, 1),
            'feat': TapPoint('body.3', 6, 1),
            'feat_alias': TapPoint('body.3', 6, 1),
            'pooled': TapPoint('pool', 6),
            'head': TapPoint('unused', 2),
        }

    def forward(self, x):
        return self.pool(self.body(x))


def _all_hooks(model):
    return {name: len(m._forward_hooks) for name, m in model.named_modules()}


@pytest.fixture
def net():
    torch.manual_seed(0)
    return TinyNet()


def test_captures_named_outputs_and_removes_hooks(net):
    x = torch.randn(2, 3, 5, 5)
    points = resolve_taps(net, ['relu1', 'feat', 'pooled'], 'student')
    with Taps(net, points) as taps:
        assert sum(_all_hooks(net).values()) == 3
        out = net(x)
    assert sum(_all_hooks(net).values()) == 0
    assert all(not m._forward_hooks for m in net.modules())
    relu1 = torch.relu(net.body[0](x))
    feat = torch.relu(net.body[2](relu1))
    assert torch.allclose(taps['relu1'], relu1)
    assert torch.allclose(taps['feat'], feat)
    assert taps['pooled'] is out          # stored as is, no copy
    assert set(taps.tensors()) == {'relu1', 'feat', 'pooled'}
    # Another forward after the block is no longer captured.
    net(torch.zeros(2, 3, 5, 5))
    assert torch.allclose(taps['feat'], feat)


def test_two_names_on_one_module_share_one_hook(net):
    points = resolve_taps(net, ['feat', 'feat_alias'], 'student')
    with Taps(net, points) as taps:
        assert len(net.body[3]._forward_hooks) == 1
        net(torch.randn(1, 3, 4, 4))
    assert taps['feat'] is taps['feat_alias']
    assert not net.body[3]._forward_hooks


def test_hooks_removed_when_the_block_raises(net):
    with pytest.raises(ZeroDivisionError):
        with Taps(net, resolve_taps(net, ['feat', 'pooled'], 'student')):
            net(torch.randn(1, 3, 4, 4))
            1 / 0
    assert sum(_all_hooks(net).values()) == 0


def test_captured_tensors_keep_the_graph(net):
    with Taps(net, resolve_taps(net, ['feat'], 'student')) as taps:
        net(torch.randn(2, 3, 4, 4))
    taps['feat'].sum().backward()
    assert net.body[2].weight.grad is not None and net.body[2].weight.grad.abs().sum() > 0


def test_in_place_modification_after_capture_raises(net):
    with Taps(net, resolve_taps(net, ['conv1', 'relu1'], 'student')) as taps:
        net(torch.randn(2, 3, 4, 4))
    assert taps['relu1'] is not None       # the in-place ReLU's own output is fine
    with pytest.raises(RuntimeError, match='in place'):
        taps['conv1']
    with pytest.raises(RuntimeError, match='in place'):
        taps.tensors()


def test_in_place_detection_also_under_no_grad(net):
    with torch.no_grad(), Taps(net, resolve_taps(net, ['conv1'], 'teacher')) as taps:
        net(torch.randn(2, 3, 4, 4))
    with pytest.raises(RuntimeError, match='in place'):
        taps['conv1']


def test_module_that_never_ran_raises(net):
    with Taps(net, resolve_taps(net, ['feat', 'head'], 'student')) as taps:
        net(torch.randn(1, 3, 4, 4))
    assert taps['feat'].shape == (1, 6, 4, 4)
    with pytest.raises(RuntimeError, match=r"'head' \(unused\) captured nothing"):
        taps['head']


def test_non_tensor_output_raises_type_error():
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    model = nn.Sequential(Pair())
    with Taps(model, {'pair': TapPoint('0', 3)}):
        with pytest.raises(TypeError, match='tuple'):
            model(torch.randn(1, 3))
    assert not model[0]._forward_hooks


def test_resolve_taps_unknown_name_lists_available(net):
    with pytest.raises(KeyError) as info:
        resolve_taps(net, ['feat', 'nope'], 'teacher')
    message = str(info.value)
    assert "'nope'" in message and 'teacher' in message
    assert 'Available taps: conv1, feat, feat_alias, head, pooled, relu1' in message


def test_resolve_taps_missing_module_path(net):
    net.tap_points = dict(net.tap_points, ghost=TapPoint('body.9', 4))
    with pytest.raises(KeyError, match=r"'ghost'.*'body\.9'.*does not exist"):
        resolve_taps(net, ['ghost'], 'student')


def test_resolve_taps_without_table_raises_type_error():
    with pytest.raises(TypeError, match='declares no tap_points'):
        resolve_taps(nn.Linear(2, 2), ['logits'], 'student')


def test_resolve_taps_returns_the_requested_points(net):
    points = resolve_taps(net, ['pooled', 'feat'], 'student')
    assert points == {'pooled': TapPoint('pool', 6), 'feat': TapPoint('body.3', 6, 1)}


def test_tap_point_under_prefixes_the_module_path():
    point = TapPoint('layer3', 64, 4)
    assert point.under('net') == TapPoint('net.layer3', 64, 4)
    assert point.module == 'layer3'        # frozen dataclass, unchanged


def test_input_taps_and_transforms(net):
    """``of_input`` reads a module's input, ``transform`` is applied on reading; a module
    tapped for its input and its output gets both."""
    from kdbench.distill.taps import ChannelsLastToFirst
    x = torch.randn(2, 3, 5, 5)
    points = {'pool_in': TapPoint('pool', 6, 1, of_input=True),
              'pool_out': TapPoint('pool', 6),
              'nhwc': TapPoint('body.3', 6, 1, transform=lambda t: t.permute(0, 2, 3, 1)),
              'back': TapPoint('body.3', 6, 1, transform=lambda t: ChannelsLastToFirst()(
                  t.permute(0, 2, 3, 1)))}
    with Taps(net, points) as taps:
        out = net(x)
    feat = net.body(x)
    assert torch.equal(taps['pool_in'], feat)
    assert taps['pool_out'] is out
    assert taps['nhwc'].shape == (2, 5, 5, 6) and torch.equal(taps['back'], feat)


def test_tokens_to_map_drops_prefix_tokens_and_checks_the_grid():
    from kdbench.distill.taps import TokensToMap
    grid = torch.arange(2 * 6 * 2 * 3, dtype=torch.float).reshape(2, 6, 2, 3)   # [N, C, H, W]
    tokens = torch.cat([torch.full((2, 1, 6), -1.0), grid.flatten(2).transpose(1, 2)], 1)
    assert torch.equal(TokensToMap(1, (2, 3))(tokens), grid)
    with pytest.raises(ValueError, match=r'2x3 patch grid.*img_size'):
        TokensToMap(1, (2, 3))(tokens[:, :5])


def test_tap_notes_explain_a_missing_tap(net):
    net.tap_notes = {'pre_pool': 'its head normalises the pooled map.'}
    with pytest.raises(KeyError, match=r"has no tap 'pre_pool': its head normalises.*"
                                       r'Available taps'):
        resolve_taps(net, ['pre_pool'], 'teacher')
    with pytest.raises(KeyError, match="Unknown tap 'nope'"):
        resolve_taps(net, ['nope'], 'teacher')


def test_transform_params_are_read_from_the_model_and_prefixed_under_a_parent(net):
    """``transform_params`` pass the model's tensors (current values, with gradients) to
    the transform; ``under`` prefixes them like the module; a wrong path is refused."""
    point = TapPoint('body.3', 6, 1, transform=lambda t, w: t * w[:, None, None],
                     transform_params=('body.2.bias',))
    assert point.under('net').transform_params == ('net.body.2.bias',)
    net.tap_points['scaled'] = point
    x = torch.randn(2, 3, 5, 5)
    with Taps(net, resolve_taps(net, ['scaled'], 'student')) as taps:
        net(x)
        taps['scaled'].sum().backward()
    assert torch.equal(taps['scaled'], net.body(x) * net.body[2].bias[:, None, None])
    assert net.body[2].bias.grad is not None
    net.tap_points['wrong'] = TapPoint('body.3', 6, 1, transform=lambda t, w: t,
                                       transform_params=('body.2.gamma',))
    with pytest.raises(KeyError, match=r"Tap 'wrong'.*'body.2.gamma', which is not a tensor"):
        resolve_taps(net, ['wrong'], 'student')


def test_layer_norm_before_pool_averages_to_the_norm_of_the_mean():
    """``mean_hw LayerNormBeforePool(F) == LayerNorm(mean_hw F)`` for any affine
    parameters; without them, with unit weight and zero bias."""
    from kdbench.distill.taps import LayerNormBeforePool
    torch.manual_seed(0)
    feat, norm = torch.randn(3, 8, 4, 5) * 3 + 1, nn.LayerNorm(8, eps=1e-5)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    moved = LayerNormBeforePool(1e-5)(feat, norm.weight, norm.bias)
    assert moved.shape == feat.shape
    assert torch.allclose(moved.mean((2, 3)), norm(feat.mean((2, 3))), atol=1e-5)
    plain = nn.LayerNorm(8, eps=1e-5, elementwise_affine=False)
    assert torch.allclose(LayerNormBeforePool(1e-5)(feat).mean((2, 3)),
                          plain(feat.mean((2, 3))), atol=1e-5)
    with pytest.raises(ValueError, match=r'expects \[N, C, H, W\]'):
        LayerNormBeforePool(1e-5)(feat.flatten(2))


def test_a_module_returning_a_list_is_read_through_a_picking_transform():
    """A list of tensors (smp's encoder features) is captured when every tap on the module
    picks one (ItemOf); in-place changes to any of them are still caught; without a
    transform the list is refused."""
    from kdbench.distill.taps import ItemOf

    class Pyramid(nn.Module):
        def forward(self, x):
            return [x, x * 2]

    net = nn.Sequential(Pyramid())
    x = torch.randn(1, 2, 3, 3)
    with Taps(net, {'f1': TapPoint('0', 2, 1, transform=ItemOf(1))}) as taps:
        out = net(x)
    assert torch.equal(taps['f1'], x * 2)
    out[1].add_(1)
    with pytest.raises(RuntimeError, match='modified in place'):
        taps['f1']
    with pytest.raises(TypeError, match='captured a list'):
        with Taps(net, {'f1': TapPoint('0', 2, 1)}):
            net(x)
