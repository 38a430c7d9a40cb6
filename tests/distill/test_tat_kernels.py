"""TaT's memory-efficient attention, the BatchNorm-safe gradient layout, and the CPU paths
of kdbench/distill/tat_fast.py (chunked hierarchical loss, chunked BatchNorm, patch-group
tiles), against float64 oracles."""
import copy

import pytest
import torch
import torch.nn.functional as F

from kdbench.distill import attention as attention_module
from kdbench.distill import tat_fast
from kdbench.distill.functional import (patch_group, tat_anchor_loss, tat_loss,
                                        tat_patch_group_loss)
from kdbench.distill.taps import TapPoint
from kdbench.distill.tat_fast import (GroupTiles, batch_norm_chunks, connector_chunks,
                                      select_path)
from kdbench.registry import DISTILL_METHODS


def _explicit64(query, key, value):
    """``softmax(q k^T) v`` written out in float64, ``[N, C, H, W]`` in and out."""
    n, c, h, w = query.shape
    q = query.double().flatten(2).transpose(1, 2)
    logits = q @ key.double().flatten(2)
    out = torch.softmax(logits, dim=-1) @ value.double().flatten(2).transpose(1, 2)
    return out.transpose(1, 2).reshape(n, value.shape[1], h, w)


@pytest.mark.parametrize('batch', [1, 3])
def test_efficient_attention_equals_the_explicit_form_values_and_gradients(batch):
    torch.manual_seed(batch)
    maps = [torch.randn(batch, 8, 5, 7) for _ in range(4)]
    oracle = [m.double().requires_grad_() for m in maps[:3]]
    expected = F.mse_loss(_explicit64(*oracle), maps[3].double())
    expected.backward()
    for efficient in (True, False):
        inputs = [m.clone().requires_grad_() for m in maps[:3]]
        loss = tat_loss(*inputs, maps[3], efficient=efficient)
        loss.backward()
        assert loss.dtype == torch.float32
        assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
        for got, ref in zip(inputs, oracle):
            torch.testing.assert_close(got.grad.double(), ref.grad, rtol=1e-5, atol=1e-7)
    # float64 inputs stay float64: the efficient kernel agrees with the oracle to rounding.
    inputs64 = [m.double().requires_grad_() for m in maps[:3]]
    loss64 = tat_loss(*inputs64, maps[3].double(), efficient=True)
    loss64.backward()
    assert loss64.dtype == torch.float64
    assert loss64.item() == pytest.approx(expected.item(), rel=1e-12)
    for got, ref in zip(inputs64, oracle):
        torch.testing.assert_close(got.grad, ref.grad, rtol=1e-10, atol=1e-12)


def test_efficient_attention_calls_the_fused_kernel_on_unit_stride_tokens(monkeypatch):
    calls = []
    original = F.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        calls.append(([t.stride(-1) for t in (q, k, v)], kwargs))
        return original(q, k, v, **kwargs)
    monkeypatch.setattr(F, 'scaled_dot_product_attention', spy)
    # A threshold the tests' tiny maps cross: 4x4 positions give a 16x16 matrix (256 > 200).
    monkeypatch.setattr(attention_module, 'KERNEL_MIN_ENTRIES', 200)
    q, k, v = (torch.randn(2, 2, 4, 4) for _ in range(3))
    tat_loss(q, k, v, torch.randn(2, 2, 4, 4))
    # The CPU flash kernel needs unit stride in the channel dim (else: the math kernel).
    assert calls == [([1, 1, 1], dict(scale=1.0))]
    calls.clear()
    tat_loss(q, k, v, torch.randn(2, 2, 4, 4), efficient=False)
    tat_patch_group_loss(q, k, v, torch.randn(2, 2, 4, 4), patches=(1, 1), groups=1)
    wide = [torch.randn(2, 64, 3, 3) for _ in range(4)]     # 9x9 matrix: 81 < 200 entries
    tat_loss(*wide)
    assert calls == []          # explicit on request, for patch groups and for small maps
    tat_loss(*wide, efficient=True)
    assert len(calls) == 1


def test_half_precision_inputs_run_the_attention_in_fp32():
    torch.manual_seed(0)
    q, k, v, t = (torch.randn(1, 64, 4, 4) * 4 for _ in range(4))   # logits ~ 1000
    expected = tat_loss(q, k, v, t)
    got = tat_loss(q.half(), k.half(), v.half(), t.half())
    assert got.dtype == torch.float32 and torch.isfinite(got)
    assert got.item() == pytest.approx(expected.item(), rel=1e-2)


def _bn_grads_oracle(method, feat_s, feat_t):
    """BatchNorm weight/bias gradients of the connectors computed from the gradient at
    their outputs, in float64, without BatchNorm's backward kernel."""
    method = copy.deepcopy(method).double()
    outputs = {}

    def keep(name):
        def hook(module, inputs, output):
            output.retain_grad()
            outputs[name] = output
        return hook
    for role in ('theta', 'phi', 'gamma'):
        conv, bn = getattr(method, role)
        conv.register_forward_hook(keep(role + '_in'))
        bn.register_forward_hook(keep(role))
    loss = sum(method({'f': feat_s.double()}, {'f': feat_t.double()}).values())
    loss.backward()
    grads = {}
    for role in ('theta', 'phi', 'gamma'):
        x, bn = outputs[role + '_in'], getattr(method, role)[1]
        mean = x.mean((0, 2, 3), keepdim=True)
        var = x.var((0, 2, 3), unbiased=False, keepdim=True)
        x_hat = (x - mean) / torch.sqrt(var + bn.eps)
        grads[role] = ((outputs[role].grad * x_hat).sum((0, 2, 3)),
                       outputs[role].grad.sum((0, 2, 3)))
    return grads


@pytest.mark.parametrize('batch', [1, 2])
def test_connector_batchnorm_gradients_are_right_at_batch_1_and_more(batch):
    # torch 2.14.1's CPU BatchNorm2d backward is wrong for the gradient layout the fused
    # kernel hands back at batch 1; kdbench hands back a contiguous gradient.
    torch.manual_seed(0)
    method = DISTILL_METHODS.build(dict(type='TaT', mode='global', theta='conv1x1_bn',
                                        phi='conv1x1_bn', gamma='conv1x1_bn', taps=('f',),
                                        efficient=True))
    method.bind({'f': TapPoint('x', 6)}, {'f': TapPoint('x', 8)})
    for p in method.parameters():
        p.data.uniform_(0.5, 1.5)
    feat_s, feat_t = torch.randn(batch, 6, 5, 6), torch.randn(batch, 8, 5, 6)
    oracle = _bn_grads_oracle(method, feat_s, feat_t)
    sum(method({'f': feat_s}, {'f': feat_t}).values()).backward()
    for role in ('theta', 'gamma'):           # phi's bias gradient is 0 (softmax shift)
        bn = getattr(method, role)[1]
        torch.testing.assert_close(bn.weight.grad.double(), oracle[role][0], rtol=1e-4,
                                   atol=1e-7)
        torch.testing.assert_close(bn.bias.grad.double(), oracle[role][1], rtol=1e-4,
                                   atol=1e-7)
    torch.testing.assert_close(method.phi[1].weight.grad.double(), oracle['phi'][0],
                               rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('momentum', [0.1, None])
@pytest.mark.parametrize('train', [True, False])
def test_batch_norm_chunks_equal_batchnorm_on_the_whole_batch(momentum, train):
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(5, momentum=momentum).double().train(train)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    bn.running_mean.uniform_(-1, 1)
    twin = copy.deepcopy(bn)
    x = (torch.randn(4, 5, 3, 6, dtype=torch.float64) * 3 + 2).requires_grad_()
    grad = torch.randn(4, 5, 3, 6, dtype=torch.float64)
    expected = bn(x)
    (expected * grad).sum().backward()
    ref = [x.grad.clone(), bn.weight.grad, bn.bias.grad]
    x.grad = None
    got = torch.cat(batch_norm_chunks(twin, x.split([1, 3])))
    (got * grad).sum().backward()
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for a, b in zip([x.grad, twin.weight.grad, twin.bias.grad], ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for name in ('running_mean', 'running_var', 'num_batches_tracked'):
        torch.testing.assert_close(getattr(twin, name), getattr(bn, name))


def test_connector_chunks_of_other_modules_keep_the_batch_semantics():
    torch.manual_seed(0)
    inner_bn = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.Conv2d(3, 3, 1))
    x = torch.randn(4, 3, 2, 2)
    got = torch.cat(connector_chunks(copy.deepcopy(inner_bn), x.split(1)))
    torch.testing.assert_close(got, inner_bn(x))
    conv = torch.nn.Conv2d(3, 2, 3, padding=1)
    torch.testing.assert_close(torch.cat(connector_chunks(conv, x.split(3))), conv(x))


def _hier(**kwargs):
    method = DISTILL_METHODS.build(dict(type='TaT', mode='hierarchical', taps=('f',),
                                        **kwargs))
    method.bind({'f': TapPoint('x', 6)}, {'f': TapPoint('x', 6)})
    for p in method.parameters():
        p.data.uniform_(0.5, 1.5)
    return method.double()


def _reference_loss(method, feat_s, feat_t):
    """The hierarchical loss on the whole batch, explicit attention (the pre-chunking form)."""
    q, k, v = method.theta(feat_s), method.phi(feat_t), method.gamma(feat_s)
    kernel = method.anchor_kernel(*feat_t.shape[2:])
    return method.loss_weight * (
        method.delta * tat_patch_group_loss(q, k, v, feat_t, method.patches, method.groups)
        + method.zeta * tat_anchor_loss(q, k, v, feat_t, kernel, efficient=False))


@pytest.mark.parametrize('size, kwargs, tiled', [
    (16, dict(patches=(4, 4), groups=4, anchors=(4, 4)), True),        # groups of 1x4
    (18, dict(patches=(4, 4), groups=4, anchors=(4, 4)), False),       # remainder rows
    (16, dict(patches=(2, 2), groups=2, anchors=(8, 8)), True),        # groups of 1x2
    (16, dict(patches=(4, 4), groups=2, anchors=(4, 4), theta='conv3x3_bn'), False),
    (16, dict(patches=(4, 4), groups=8, anchors=(8, 8)), True),        # groups of 1x2
    (16, dict(patches=(2, 2), groups=1, anchors=(4, 4)), True),        # groups of 2x2
    (12, dict(patches=(3, 4), groups=4, anchors=(3, 4)), False),       # groups of 3
    (16, dict(patches=(4, 4), groups=16, anchors=(4, 4), phi='identity'), True),
])
@pytest.mark.parametrize('train', [True, False])
@pytest.mark.parametrize('batch', [1, 3])
def test_chunked_hierarchical_loss_equals_the_whole_batch_form(monkeypatch, size, kwargs,
                                                               tiled, train, batch):
    monkeypatch.setattr(tat_fast, 'CHUNK_BYTES', 1)            # one image per chunk
    torch.manual_seed(0)
    method = _hier(**kwargs).train(train)
    reference = copy.deepcopy(method)
    feat_s = torch.randn(batch, 6, size, size, dtype=torch.float64, requires_grad=True)
    feat_t = torch.randn(batch, 6, size, size, dtype=torch.float64)
    kernel = method.anchor_kernel(size, size)
    path = select_path('auto', 'cpu', 'hierarchical', method.kinds.values(), (size, size),
                       (size, size), method.patches, method.groups, kernel)
    assert path == ('tiled' if tiled else 'chunked')                # the path under test
    expected = _reference_loss(reference, feat_s, feat_t)
    expected.backward()
    ref_grads = [feat_s.grad.clone()] + [p.grad for p in reference.parameters()]
    feat_s.grad = None
    loss = method({'f': feat_s}, {'f': feat_t})['loss_tat']
    loss.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    grads = [feat_s.grad] + [p.grad for p in method.parameters()]
    for got, ref in zip(grads, ref_grads):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-14)
    for got, ref in zip(method.buffers(), reference.buffers()):
        torch.testing.assert_close(got, ref)


def test_chunked_hierarchical_loss_runs_under_bfloat16_autocast(monkeypatch):
    torch.manual_seed(0)
    method = _hier(patches=(4, 4), groups=4, anchors=(4, 4)).float()
    feat_s, feat_t = torch.randn(3, 6, 16, 16), torch.randn(3, 6, 16, 16)
    losses = []
    for budget in (2 ** 30, 1):                        # one chunk; one image per chunk
        monkeypatch.setattr(tat_fast, 'CHUNK_BYTES', budget)
        twin = copy.deepcopy(method)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            loss = twin({'f': feat_s}, {'f': feat_t})['loss_tat']
        loss.backward()
        assert loss.dtype == torch.float32
        assert all(p.grad is not None and torch.isfinite(p.grad).all()
                   for p in twin.parameters())
        losses.append(loss.item())
    assert losses[1] == pytest.approx(losses[0], rel=1e-2)


@pytest.mark.parametrize('patches, groups', [((4, 4), 4), ((4, 4), 8), ((2, 2), 1),
                                             ((4, 2), 2), ((2, 4), 8)])
@pytest.mark.parametrize('memory_format', [torch.contiguous_format, torch.channels_last])
def test_group_tiles_hold_the_patch_groups_channels_last(patches, groups, memory_format):
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64).contiguous(memory_format=memory_format)
    x.requires_grad_()
    tiles = GroupTiles.apply(x, patches, groups)             # [N*g, C, h, w*P]
    n, m = patches
    per_group, h, w = n * m // groups, 8 // n, 8 // m
    assert tiles.shape == (2 * groups, 3, h, w * per_group)
    assert tiles.is_contiguous(memory_format=torch.channels_last)
    # Its memory [N, g, h, w, P, C] is patch_group's [N, g, P*C, h, w] (channel p*C + c).
    expected = patch_group(x, patches, groups).permute(0, 1, 3, 4, 2)
    got = tiles.permute(0, 2, 3, 1).reshape(2, groups, h, w, per_group * 3)
    assert torch.equal(got, expected)
    assert torch.autograd.gradcheck(lambda t: GroupTiles.apply(t, patches, groups), (x,))


@pytest.mark.parametrize('transposed', [False, True])
def test_logits_gradients_keep_each_operands_layout(transposed):
    """``a b^T`` with ``a`` a transposed view of an ``[N, C, L]`` map (the explicit
    attention on NCHW maps): its gradient comes back in that layout, equal to bmm's."""
    base = torch.randn(2, 5, 7, dtype=torch.float64, requires_grad=True)
    a = base.transpose(1, 2) if transposed else base.detach().transpose(1, 2).contiguous() \
        .requires_grad_()
    b = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(2, 7, 3, dtype=torch.float64)
    got_a, got_b = torch.autograd.grad(attention_module.logits(a, b), (a, b), grad)
    want_a, want_b = torch.autograd.grad(torch.bmm(a, b.transpose(1, 2)), (a, b), grad)
    torch.testing.assert_close(got_a, want_a)
    torch.testing.assert_close(got_b, want_b)
    assert got_a.stride() == a.stride() and got_b.stride() == b.stride()
    if transposed:
        assert want_a.stride() != a.stride()       # bmm's own backward: a transposing copy
