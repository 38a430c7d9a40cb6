"""TaT's hierarchical loss on feature maps cut into channels-last patch groups (the fast
path).

Used by :class:`kdbench.distill.tat.TaT` when the connectors act per position (identity or
Conv1x1+BN), the patches tile the map exactly, the anchor cells lie inside the patches and
a group is a rectangle of patches (:func:`group_shape`). The values are those of
:func:`~kdbench.distill.tat.tat_patch_group_loss` and
:func:`~kdbench.distill.tat.tat_anchor_loss` on the uncut maps; only the memory layout
differs, chosen for the CPU (``docs/tat.md``):

* the student and teacher maps are cut into their patch groups once, before the
  connectors, laid out ``[B, g, h, w, P, C]`` and seen by the connectors as a
  channels-last ``[B*g, C, h, w*P]`` map (:class:`GroupTiles`): 1x1 convolutions and
  BatchNorm on channels-last 8x8 patches run ~1.3x faster than on NCHW ones (oneDNN
  reorders those), and the cut is a blocked 2-D transpose plus a copy of ``C``-channel
  rows, ~2x faster than one permuting copy;
* a group is then one contiguous ``[h*w, P*C]`` token matrix (its positions, each with its
  patches' channels), so its attention is one product, as in the official code;
* the anchors are each patch average-pooled (the cells lie inside the patches) and taken
  together as the image's ``[cells, C]`` tokens; attention and squared error do not depend
  on the order of the positions (the same for the four maps).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .attention import _attention_precision, attention_tokens


def group_shape(patches: Tuple[int, int], groups: int) -> Optional[Tuple[int, int]]:
    """``(rows, columns)`` of patches in one group (``P = n*m / groups`` consecutive
    patches in raster order): ``(1, P)`` when ``P`` divides ``m``, ``(P / m, m)`` when
    ``m`` divides ``P``; ``None`` when the group is not such a rectangle."""
    n, m = patches
    per_group = n * m // groups
    if m % per_group == 0:
        return 1, per_group
    if per_group % m == 0 and n % (per_group // m) == 0:
        return per_group // m, m
    return None


class GroupTiles(torch.autograd.Function):
    """``[N, C, H, W]`` -> the patch groups of TaT as a channels-last ``[N*g, C, h, w*P]``
    tensor whose memory is ``[N, g, h, w, P, C]``: for each group (image-major, raster
    order) and each position ``(y, x)`` of an ``h x w = H/n x W/m`` patch, the ``C``
    channels of the group's ``P`` patches (``H, W`` divisible by ``n, m``;
    :func:`group_shape` not ``None``). The backward returns a contiguous ``[N, C, H, W]``
    gradient. Both directions go through each image's token map ``[H*W, C]``: a 2-D
    transpose (torch's blocked kernel) and a copy of ``C``-channel rows.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, patches: Tuple[int, int], groups: int) -> Tensor:
        batch, channels, height, width = x.shape
        order, grouped = _token_layout(x.shape, patches, groups)
        ctx.shape, ctx.order, ctx.grouped = x.shape, order, grouped
        out = x.new_empty(batch, *(grouped[i] for i in order))
        for image, target in zip(x, out):
            tokens = image.reshape(channels, height * width).t().contiguous()  # [H*W, C]
            target.copy_(tokens.view(grouped).permute(order))
        g, h, w, p = _sizes(x.shape, patches, groups)
        return out.view(batch * g, h, w * p, channels).permute(0, 3, 1, 2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor):
        batch, channels, height, width = ctx.shape
        inverse = [ctx.order.index(i) for i in range(len(ctx.order))]
        tiles = grad.permute(0, 2, 3, 1).reshape(batch, *(ctx.grouped[i] for i in ctx.order))
        out = grad.new_empty(ctx.shape)
        for image, target in zip(tiles, out):
            tokens = image.permute(inverse).reshape(height * width, channels)
            target.view(channels, height * width).copy_(tokens.t())
        return out, None, None


def _sizes(shape: Sequence[int], patches: Tuple[int, int], groups: int
           ) -> Tuple[int, int, int, int]:
    """Groups per image, patch height and width, patches per group."""
    n, m = patches
    return groups, shape[2] // n, shape[3] // m, n * m // groups


def _token_layout(shape: Sequence[int], patches: Tuple[int, int], groups: int
                  ) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """The permutation from one image's token map ``[H, W, C]``, viewed as
    ``[n_g, n_r, h, m_g, m_r, w, C]`` (patch rows split into rows of groups ``n_g`` and
    rows within a group ``n_r``, columns likewise), to ``[n_g, m_g, h, w, n_r, m_r, C]``;
    and that view's sizes."""
    n, m = patches
    rows, columns = group_shape(patches, groups)
    _, h, w, _ = _sizes(shape, patches, groups)
    grouped = (n // rows, rows, h, m // columns, columns, w, shape[1])
    return (0, 3, 2, 5, 1, 4, 6), grouped


def tiled_hierarchical_losses(query: Tensor, key: Tensor, value: Tensor, target: Tensor,
                              images: int, patches_per_group: int, kernel: Tuple[int, int],
                              efficient: Optional[bool] = None) -> Tuple[Tensor, Tensor]:
    """TaT's patch-group and anchor losses of ``images`` images from their
    :class:`GroupTiles`.

    Args:
        query, key, value, target: ``[images * g, C, h, w * P]`` channels-last group tiles
            of the embeddings and the teacher map (memory ``[images, g, h, w, P, C]``).
        images: the images ``B`` the tiles come from.
        patches_per_group: ``P``.
        kernel: anchor pooling kernel (inside a patch).
        efficient: the anchor attention's kernel choice (:func:`attention_tokens`).

    Returns:
        ``(patch_group_loss, anchor_loss)``: fp32 scalars (fp64 for fp64), equal to
        :func:`~kdbench.distill.tat.tat_patch_group_loss` and
        :func:`~kdbench.distill.tat.tat_anchor_loss` on the uncut maps.
    """
    tiles, channels, h, wide = query.shape
    w, features = wide // patches_per_group, patches_per_group * channels
    with _attention_precision(query) as dtype:
        # [G, h, w, P*C]: a group's positions, each with its patches' channels.
        maps = [x.to(dtype).permute(0, 2, 3, 1).reshape(tiles, h, w, features)
                for x in (query, key, value, target)]
        q, k, v, t = (x.view(tiles, h * w, features) for x in maps)
        patch = F.mse_loss(attention_tokens(q, k, v, efficient=False), t)
        # Anchors: each patch pooled (channels-last, its P*C features as channels); an
        # image's cells as tokens of C channels.
        pooled = [F.avg_pool2d(x.permute(0, 3, 1, 2), kernel).permute(0, 2, 3, 1)
                  .reshape(images, -1, channels) for x in maps]       # [B, cells, C]
        anchor = F.mse_loss(attention_tokens(*pooled[:3], efficient), pooled[3])
    return patch, anchor
