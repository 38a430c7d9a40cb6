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


class _Logits(torch.autograd.Function):
    """``apply(a [N, La, C], b [N, Lb, C])`` -> ``a b^T`` ``[N, La, Lb]`` (``torch.bmm``),
    each input gradient equal to ``bmm``'s and laid out as its operand: contiguous, or a
    transposed view of a contiguous tensor when the operand is one (``bmm``'s own backward
    returns such a gradient transposed, which costs a copy downstream). First-order
    gradients only."""

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

    Runs in fp32 (fp64 inputs stay fp64) with autocast disabled (:func:`attention_precision`):
    the logits ``q k^T`` sum ``C`` products without scaling, which overflow fp16, so
    half-precision inputs are cast up.

    ``efficient=True`` (when ``Cv == C``): ``scaled_dot_product_attention(q, k, v,
    scale=1.0)`` on contiguous ``[N, HW, C]`` tokens (memory grows with the positions, not
    their square; the input gradients come back contiguous, :class:`_ContiguousGrad`).
    Otherwise (or ``efficient=False``) the explicit product, computed channel-major as
    ``v softmax(k^T q)`` on the ``[N, C, HW]`` views (softmax over the key dimension) with
    the logits of :func:`logits`, so every gradient keeps its map's layout.
    ``efficient=None`` takes the kernel when one image's ``HqWq x HkWk`` matrix has more
    than :data:`KERNEL_MIN_ENTRIES` entries (from a 46x46 map on). Both forms give the same
    values and gradients up to rounding (``docs/tat.md``).
    """
    with attention_precision(query) as dtype:
        query, key, value = (x.to(dtype) for x in (query, key, value))
        positions_q, positions_k = query[0, 0].numel(), key[0, 0].numel()
        if efficient is None:
            efficient = positions_q * positions_k > KERNEL_MIN_ENTRIES
        if efficient and value.shape[1] == query.shape[1]:
            return _kernel(*(_tokens(x) for x in (query, key, value))).transpose(1, 2)
        q, k, v = query.flatten(2), key.flatten(2), value.flatten(2)   # [N, C(v), HW]
        scores = logits(k.transpose(1, 2), q.transpose(1, 2))          # [N, HkWk, HqWq]
        return torch.bmm(v, torch.softmax(scores, dim=1))              # [N, Cv, HqWq]


def attention_tokens(query: Tensor, key: Tensor, value: Tensor,
                     efficient: Optional[bool] = None) -> Tensor:
    """The attention on token matrices: ``[N, Lq, C]``, ``[N, Lk, C]``, ``[N, Lk, C]`` ->
    ``[N, Lq, C]`` (fp32; fp64 stays fp64). ``efficient`` as in :func:`attention_flat`; the
    kernel's input gradients come back contiguous."""
    with attention_precision(query) as dtype:
        query, key, value = (x.to(dtype) for x in (query, key, value))
        if efficient is None:
            efficient = query.shape[1] * key.shape[1] > KERNEL_MIN_ENTRIES
        if efficient:
            return _kernel(*(_ContiguousGrad.apply(x.contiguous()) for x in (query, key, value)))
        return torch.bmm(torch.softmax(logits(query, key), dim=-1), value)


def _kernel(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """``scaled_dot_product_attention`` without TaT's missing scaling, on contiguous
    ``[N, L, C]`` tokens whose gradients the caller lays out (:class:`_ContiguousGrad`)."""
    return F.scaled_dot_product_attention(query, key, value, scale=1.0)


def _tokens(x: Tensor) -> Tensor:
    """``[N, C, H, W]`` -> contiguous ``[N, H*W, C]`` tokens whose gradient goes back to
    ``x`` as a contiguous ``[N, C, H, W]`` tensor (:class:`_ContiguousGrad`)."""
    return _ContiguousGrad.apply(x).flatten(2).transpose(1, 2).contiguous()


class _ContiguousGrad(torch.autograd.Function):
    """``apply(x)`` is ``x`` (a view); the backward returns the incoming gradient made
    contiguous. Put in front of ``scaled_dot_product_attention``, whose CPU backward returns
    strided gradients that a BatchNorm connector's backward must not receive
    (``docs/tat.md``)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return grad.contiguous()


@contextmanager
def attention_precision(x: Tensor) -> Iterator[torch.dtype]:
    """Context with autocast off for ``x``'s device; yields the dtype the attention runs in
    for ``x``: fp32, or fp64 for fp64 (``torch.promote_types(x.dtype, float32)``)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        yield torch.promote_types(x.dtype, torch.float32)
