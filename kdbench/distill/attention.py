"""The attention of TaT, ``softmax(q k^T) v`` without ``1/sqrt(C)`` scaling, in the two
memory layouts kdbench feeds it: channel-major ``[N, C, H, W]`` maps
(:func:`attention_flat`) and token-major ``[N, L, C]`` matrices (:func:`attention_tokens`).
Both run in fp32 with autocast off and choose between
``torch.nn.functional.scaled_dot_product_attention`` and the explicit product
(``docs/tat.md``); the values are the same up to rounding.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

#: ``efficient=None``: attention matrices of more entries per image than this (16 MiB in
#: fp32) go through ``scaled_dot_product_attention``.
KERNEL_MIN_ENTRIES = 2 ** 22


class _Tokens(torch.autograd.Function):
    """``[N, C, H, W]`` -> contiguous ``[N, H*W, C]`` tokens; the gradient goes back as a
    contiguous ``[N, C, H, W]`` tensor.

    ``scaled_dot_product_attention``'s CPU backward returns its input gradients laid out as
    ``[L, N, C]``; viewed back as ``[N, C, H, W]`` at ``N = 1`` that is a "channels-last"
    tensor with a batch stride of ``C``, and torch 2.14.1's CPU ``BatchNorm2d`` backward
    returns wrong weight/bias gradients for it (relative error ~1). A contiguous gradient
    is what a convolution + BatchNorm connector handles right at every batch size.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        ctx.shape = x.shape
        return x.flatten(2).transpose(1, 2).contiguous()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        n, c, h, w = ctx.shape
        return grad.transpose(1, 2).contiguous().view(n, c, h, w)


class _Logits(torch.autograd.Function):
    """``a b^T``: ``[N, La, C]`` x ``[N, Lb, C]`` -> ``[N, La, Lb]``, each gradient computed
    in its operand's memory layout. ``bmm``'s own backward returns the gradient of a
    transposed view (e.g. the ``[N, L, C]`` view of an ``[N, C, H, W]`` map) transposed,
    which the connectors behind it then copy back: the largest copies of the patch-group
    loss on CPU. First-order gradients only."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor) -> Tensor:
        ctx.save_for_backward(a, b)
        return torch.bmm(a, b.transpose(1, 2))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor):
        a, b = ctx.saved_tensors
        grad_a = _product_like(a, grad, b) if ctx.needs_input_grad[0] else None
        grad_b = _product_like(b, grad.transpose(1, 2), a) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def _product_like(like: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``x @ y`` (batched) in the memory layout of ``like``: contiguous, or a transposed
    view of a contiguous tensor when ``like`` is one."""
    if like.stride(-1) != 1:
        return torch.bmm(y.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2)
    return torch.bmm(x, y)


def logits(a: Tensor, b: Tensor) -> Tensor:
    """``a b^T`` for ``[N, La, C]`` and ``[N, Lb, C]`` (contiguous or transposed views),
    gradients in the operands' layouts (:class:`_Logits`)."""
    return _Logits.apply(a, b)


def attention_flat(query: Tensor, key: Tensor, value: Tensor,
                   efficient: Optional[bool] = None) -> Tensor:
    """``tat_attention`` (shapes unchecked) with flattened positions: ``[N, Cv, HqWq]``.

    Runs in fp32 (fp64 inputs stay fp64) with autocast disabled: the logits ``q k^T`` sum
    ``C`` products without scaling and overflow fp16 (a 256-channel map of unit features
    already gives logits of ~256; fp16 and bf16 also round the softmax weights to 3 and 2
    digits), so half-precision inputs are cast up rather than handed to a half-precision
    kernel.

    ``efficient=True`` (when ``Cv == C``) calls
    ``torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=1.0)`` on contiguous
    tokens. On CPU that selects the flash kernel for fp32 and fp64 (it needs a unit stride
    in the channel dimension and equal ``C`` for query, key and value: otherwise the math
    kernel, i.e. the explicit product, runs); on CUDA fp32 selects the memory-efficient
    kernel (flash needs fp16/bf16, which the cast above rules out). Neither keeps the
    ``HqWq x HkWk`` matrix: memory grows with the positions, not their square. Otherwise
    (or ``efficient=False``) the explicit product, computed channel-major as
    ``v softmax(k^T q)`` on the ``[N, C, HW]`` views (softmax over the key dimension): every
    operand and every gradient stays in the maps' own layout, where the token-major form
    ``softmax(q k^T) v`` hands back transposed gradients that cost a copy of each map (the
    largest copies of the patch-group loss on CPU).
    ``efficient=None`` picks the kernel when one image's ``HqWq x HkWk`` matrix has more
    than :data:`KERNEL_MIN_ENTRIES` entries (16 MiB in fp32; from a 46x46 map on): e.g. a
    64x64 or 128x128 map, but not a 33x33 map, the 32x32 anchor maps or a 7x7
    classification map, whose matrices are cheap to keep and where the explicit product
    measured as fast or faster on CPU (``docs/tat.md``).
    """
    with _attention_precision(query) as dtype:
        query, key, value = (x.to(dtype) for x in (query, key, value))
        positions_q, positions_k = query[0, 0].numel(), key[0, 0].numel()
        if efficient is None:
            efficient = positions_q * positions_k > KERNEL_MIN_ENTRIES
        if efficient and value.shape[1] == query.shape[1]:
            return _kernel(*(_Tokens.apply(x) for x in (query, key, value))).transpose(1, 2)
        q, k, v = query.flatten(2), key.flatten(2), value.flatten(2)   # [N, C(v), HW]
        scores = logits(k.transpose(1, 2), q.transpose(1, 2))          # [N, HkWk, HqWq]
        return torch.bmm(v, torch.softmax(scores, dim=1))              # [N, Cv, HqWq]


def attention_tokens(query: Tensor, key: Tensor, value: Tensor,
                     efficient: Optional[bool] = None) -> Tensor:
    """The attention on token matrices: ``[N, Lq, C]``, ``[N, Lk, C]``, ``[N, Lk, C]`` ->
    ``[N, Lq, C]`` (fp32; fp64 stays fp64). ``efficient`` as in :func:`attention_flat`; the
    kernel's input gradients come back contiguous."""
    with _attention_precision(query) as dtype:
        query, key, value = (x.to(dtype) for x in (query, key, value))
        if efficient is None:
            efficient = query.shape[1] * key.shape[1] > KERNEL_MIN_ENTRIES
        if efficient:
            return _kernel(*(_ContiguousGrad.apply(x.contiguous()) for x in (query, key, value)))
        return torch.bmm(torch.softmax(logits(query, key), dim=-1), value)


def _kernel(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """``scaled_dot_product_attention`` without TaT's missing scaling, on contiguous
    ``[N, L, C]`` tokens whose gradients the caller lays out (:class:`_Tokens`,
    :class:`_ContiguousGrad`)."""
    return F.scaled_dot_product_attention(query, key, value, scale=1.0)


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the gradient contiguous (see :class:`_Tokens`)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad.contiguous()


@contextmanager
def _attention_precision(x: Tensor) -> Iterator[torch.dtype]:
    """Autocast off; yields the attention's dtype for ``x`` (fp32, or fp64 for fp64)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        yield torch.promote_types(x.dtype, torch.float32)
