"""TaT's path rule and switch: the CPU paths of kdbench/distill/tat_fast.py compute what
the reference functions of kdbench/distill/tat.py compute (float64), the rule sends
everything but CPU hierarchical losses to the reference, and implementation='reference'
runs the reference functions."""
import copy

import pytest
import torch

from kdbench.distill import tat as tat_module
from kdbench.distill import tat_fast
from kdbench.distill.functional import tat_anchor_loss, tat_loss, tat_patch_group_loss
from kdbench.distill.taps import TapPoint
from kdbench.distill.tat_fast import chunked_loss, select_path
from kdbench.registry import DISTILL_METHODS

PER_POSITION = ('conv1x1_bn', 'conv1x1_bn', 'conv1x1_bn')


def _method(c_s=6, c_t=6, **kwargs):
    torch.manual_seed(0)
    method = DISTILL_METHODS.build(dict(type='TaT', taps=('f',), **kwargs))
    method.bind({'f': TapPoint('x', c_s)}, {'f': TapPoint('x', c_t)})
    for p in method.parameters():
        p.data.uniform_(0.5, 1.5)
    return method.double()


# ----------------------------------------------------------------------------- the rule

@pytest.mark.parametrize('device_type', ['cuda', 'mps', 'xpu'])
def test_rule_takes_the_reference_off_the_cpu(device_type):
    # A map every CPU path would take (tiled) stays on the reference elsewhere.
    args = (PER_POSITION, (16, 16), (16, 16), (4, 4), 4, (4, 4))
    assert select_path('auto', 'cpu', 'hierarchical', *args) == 'tiled'
    assert select_path('auto', device_type, 'hierarchical', *args) == 'reference'


def test_rule_on_the_cpu():
    tiled = (PER_POSITION, (16, 16), (16, 16), (4, 4), 4, (4, 4))
    assert select_path('auto', 'cpu', 'hierarchical', *tiled) == 'tiled'
    assert select_path('reference', 'cpu', 'hierarchical', *tiled) == 'reference'
    assert select_path('auto', 'cpu', 'global', PER_POSITION, (16, 16), (16, 16)) == \
        'reference'
    # Rows of patches per group (P = 8 = 2 rows of 4) and 1 x P groups are tiled.
    assert select_path('auto', 'cpu', 'hierarchical', PER_POSITION, (16, 16), (16, 16),
                       (4, 4), 2, (4, 4)) == 'tiled'
    for chunked in [
            (('conv3x3_bn', 'conv1x1_bn', 'conv1x1_bn'), (16, 16), (16, 16), (4, 4), 4,
             (4, 4)),                                              # 3x3 connector
            (PER_POSITION, (18, 18), (18, 18), (4, 4), 4, (4, 4)),    # remainder rows
            (PER_POSITION, (8, 8), (16, 16), (4, 4), 4, (4, 4)),      # resized student
            (PER_POSITION, (16, 16), (16, 16), (4, 4), 4, (8, 8)),    # anchors across patches
            (PER_POSITION, (12, 16), (12, 16), (3, 4), 4, (3, 4))]:   # groups of 3 patches
        assert select_path('auto', 'cpu', 'hierarchical', *chunked) == 'chunked', chunked


def test_unknown_implementation_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"implementation must be one of \('auto', "
                                         r"'reference'\), got 'fast'"):
        DISTILL_METHODS.build(dict(type='TaT', implementation='fast'))
    with pytest.raises(ValueError, match="got 'fast'"):
        select_path('fast', 'cpu', 'global', PER_POSITION, (4, 4), (4, 4))


# ----------------------------------------------------------------------------- the switch

@pytest.mark.parametrize('mode_kwargs', [
    dict(mode='hierarchical', patches=(4, 4), groups=4, anchors=(4, 4)),
    dict(mode='global', phi='conv1x1_bn')])
def test_reference_implementation_runs_the_reference_functions(monkeypatch, mode_kwargs):
    def refuse(*args, **kwargs):
        raise AssertionError('implementation=reference must not take a CPU path')
    monkeypatch.setattr(tat_module, 'chunked_loss', refuse)
    method = _method(implementation='reference', **mode_kwargs)
    feat_s = torch.randn(3, 6, 16, 16, dtype=torch.float64)
    feat_t = torch.randn(3, 6, 16, 16, dtype=torch.float64)
    loss = method({'f': feat_s}, {'f': feat_t})['loss_tat']
    twin = _method(**mode_kwargs)
    q, k, v = twin.theta(feat_s), twin.phi(feat_t), twin.gamma(feat_s)
    if method.mode == 'global':
        expected = tat_loss(q, k, v, feat_t)
    else:
        kernel = twin.anchor_kernel(16, 16)
        expected = twin.delta * tat_patch_group_loss(q, k, v, feat_t, (4, 4), 4) + \
            twin.zeta * tat_anchor_loss(q, k, v, feat_t, kernel)
    assert torch.equal(loss, twin.loss_weight * expected)
    assert 'implementation=reference' in repr(method)


# ----------------------------------------------------------------------------- equality

@pytest.mark.parametrize('size, kwargs, path', [
    (16, dict(patches=(4, 4), groups=4, anchors=(4, 4)), 'tiled'),          # 1 x 4 groups
    (16, dict(patches=(4, 4), groups=2, anchors=(8, 8)), 'tiled'),          # 2 rows of 4
    (16, dict(patches=(4, 4), groups=16, anchors=(4, 4), phi='identity'), 'tiled'),  # 1 x 1
    (18, dict(patches=(4, 4), groups=4, anchors=(4, 4)), 'chunked'),        # remainder rows
    (16, dict(patches=(4, 4), groups=4, anchors=(4, 4), gamma='conv3x3_bn'), 'chunked'),
])
@pytest.mark.parametrize('train', [True, False])
def test_cpu_paths_equal_the_reference_implementation(monkeypatch, size, kwargs, path, train):
    """Five images in chunks of 2, 2 and 1: loss, gradients of the student feature and of
    every connector (phi on the teacher side included), BatchNorm running statistics."""
    batch = 5
    monkeypatch.setattr(tat_fast, 'CHUNK_BYTES', 2 * 6 * size * size * 8)
    fast = _method(mode='hierarchical', **kwargs).train(train)
    reference = _method(mode='hierarchical', implementation='reference', **kwargs).train(train)
    kernel = fast.anchor_kernel(size, size)
    assert select_path('auto', 'cpu', 'hierarchical', fast.kinds.values(), (size, size),
                       (size, size), fast.patches, fast.groups, kernel) == path
    torch.manual_seed(1)
    feat_s = torch.randn(batch, 6, size, size, dtype=torch.float64)
    feat_t = torch.randn(batch, 6, size, size, dtype=torch.float64)
    results = []
    for method in (fast, reference):
        student = feat_s.clone().requires_grad_()
        loss = method({'f': student}, {'f': feat_t})['loss_tat']
        loss.backward()
        results.append((loss, student.grad, dict(method.named_parameters()),
                        dict(method.named_buffers())))
    (loss, grad, params, buffers), (ref_loss, ref_grad, ref_params, ref_buffers) = results
    torch.testing.assert_close(loss, ref_loss, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-13)
    assert any(name.startswith('phi.') for name in params) == (kwargs.get('phi') != 'identity')
    for name, param in params.items():
        torch.testing.assert_close(param.grad, ref_params[name].grad, rtol=1e-10, atol=1e-13,
                                   msg=name)
    for name, buffer in buffers.items():
        torch.testing.assert_close(buffer, ref_buffers[name], rtol=1e-12, atol=1e-14,
                                   msg=name)


def test_chunked_loss_with_several_chunks_equals_the_whole_batch():
    """chunk_bytes forces chunks of 2 images on a small map; BatchNorm over the batch."""
    torch.manual_seed(0)

    def connector():
        return torch.nn.Sequential(torch.nn.Conv2d(4, 4, 1, bias=False),
                                   torch.nn.BatchNorm2d(4)).double()
    connectors = [connector() for _ in range(3)]
    twins = copy.deepcopy(connectors)
    feat_s = torch.randn(5, 4, 6, 6, dtype=torch.float64, requires_grad=True)
    feat_t = torch.randn(5, 4, 6, 6, dtype=torch.float64)
    per_image = 4 * 6 * 6 * 8
    got = chunked_loss(connectors, feat_s, feat_t, tat_loss, chunk_bytes=2 * per_image)
    grads = torch.autograd.grad(got, [feat_s] + [p for m in connectors for p in m.parameters()])
    theta, phi, gamma = twins
    expected = tat_loss(theta(feat_s), phi(feat_t), gamma(feat_s), feat_t)
    ref_grads = torch.autograd.grad(expected,
                                    [feat_s] + [p for m in twins for p in m.parameters()])
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)
    for grad, ref_grad in zip(grads, ref_grads):
        torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-13)
    for module, twin in zip(connectors, twins):
        torch.testing.assert_close(module[1].running_var, twin[1].running_var)
