"""TaT's hierarchical loss on feature maps cut into channels-last patches (the fast path).

Used by :class:`kdbench.distill.tat.TaT` when the connectors act per position (identity or
Conv1x1+BN) and the patches tile the map exactly with the anchor cells inside them. The
values are those of :func:`~kdbench.distill.tat.tat_patch_group_loss` and
:func:`~kdbench.distill.tat.tat_anchor_loss` on the uncut maps; only the memory layout
differs, chosen for the CPU (``docs/tat.md``):

* the student and teacher maps are cut into their ``n x m`` patches once, before the
  connectors, and stored **channels-last** (``[B*n*m, C, h, w]`` whose memory is
  ``[B, n, m, h, w, C]``): a 1x1 convolution and BatchNorm on channels-last tiles run
  ~1.3x faster than on ``h x w = 8 x 8`` NCHW tiles (oneDNN reorders those), and the
  conversion is a blocked 2-D transpose plus a copy of contiguous rows
  (:class:`ChannelsLastTiles`), ~2x faster than one permuting copy;
* each patch is a ``[h*w, C]`` token matrix. A patch group's attention logits are the sum
  over its ``P`` patches of the patches' ``q_p k_p^T`` (the channels of a group are its
  patches' channels), its output is ``softmax(.) v_p`` per patch, so no group is ever
  copied together;
* the anchors are each patch average-pooled (the cells lie inside the patches) and taken
  together as the image's ``[cells, C]`` tokens; attention and squared error do not depend
  on the order of the positions (the same for the four maps).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .attention import _attention_precision, attention_tokens, logits


class ChannelsLastTiles(torch.autograd.Function):
    """``[N, C, H, W]`` -> its ``n x m`` patches of ``h x w = H/n x W/m`` as a channels-last
    ``[N*n*m, C, h, w]`` tensor (raster order of the patches, image-major; ``H, W``
    divisible by ``n, m``). The backward returns a contiguous ``[N, C, H, W]`` gradient.

    Both directions go through the token map ``[H*W, C]`` of each image: a 2-D transpose
    (torch's blocked kernel) and a copy of contiguous ``w*C`` rows.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, patches: Tuple[int, int]) -> Tensor:
        batch, channels, height, width = x.shape
        n, m = patches
        h, w = height // n, width // m
        ctx.shape, ctx.patches = x.shape, patches
        tiles = x.new_empty(batch, n, m, h, w, channels)
        for image, out in zip(x, tiles):
            tokens = image.reshape(channels, height * width).t().contiguous()  # [H*W, C]
            out.copy_(tokens.view(n, h, m, w * channels).transpose(1, 2)
                      .view(n, m, h, w, channels))
        return tiles.view(batch * n * m, h, w, channels).permute(0, 3, 1, 2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor):
        batch, channels, height, width = ctx.shape
        n, m = ctx.patches
        h, w = height // n, width // m
        tiles = grad.permute(0, 2, 3, 1).reshape(batch, n, m, h, w * channels)
        out = grad.new_empty(ctx.shape)
        for image, target in zip(tiles, out):
            tokens = image.transpose(1, 2).reshape(height * width, channels)   # [H*W, C]
            target.view(channels, height * width).copy_(tokens.t())
        return out, None


def tokens(tiles: Tensor) -> Tensor:
    """Channels-last ``[T, C, h, w]`` -> ``[T, h*w, C]`` (a view)."""
    return tiles.permute(0, 2, 3, 1).reshape(tiles.shape[0], -1, tiles.shape[1])


def tiled_hierarchical_losses(query: Tensor, key: Tensor, value: Tensor, target: Tensor,
                              images: int, groups: int, kernel: Tuple[int, int],
                              efficient: Optional[bool] = None) -> Tuple[Tensor, Tensor]:
    """TaT's patch-group and anchor losses of ``images`` images from their channels-last
    tiles (:class:`ChannelsLastTiles`).

    Args:
        query, key, value, target: ``[images * n * m, C, h, w]`` channels-last tiles of
            the embeddings and the teacher map.
        images: the images ``B`` the tiles come from.
        groups: patch groups per image (``P = n * m / groups`` consecutive tiles each).
        kernel: anchor pooling kernel (inside a tile).
        efficient: the anchor attention's kernel choice (:func:`attention_tokens`).

    Returns:
        ``(patch_group_loss, anchor_loss)``: fp32 scalars (fp64 for fp64), the means of
        :func:`~kdbench.distill.tat.tat_patch_group_loss` and
        :func:`~kdbench.distill.tat.tat_anchor_loss` over the same images.
    """
    with _attention_precision(query) as dtype:
        maps = [x.to(dtype) for x in (query, key, value, target)]
        q, k, v, t = (tokens(x) for x in maps)                         # [T, h*w, C]
        tiles, positions, channels = q.shape
        per_group = tiles // (images * groups)
        scores = logits(q, k)                                           # [T, hw, hw]
        if per_group > 1:
            scores = scores.view(-1, per_group, positions, positions).sum(1)
        attention = torch.softmax(scores, dim=-1).unsqueeze(1)          # [G, 1, hw, hw]
        grouped = (-1, per_group, positions, channels)
        out = torch.matmul(attention, v.view(grouped))                  # [G, P, hw, C]
        patch = F.mse_loss(out, t.view(grouped))
        pooled = [tokens(F.avg_pool2d(x, kernel)).reshape(images, -1, channels)
                  for x in maps]                                        # [B, cells, C]
        anchor = F.mse_loss(attention_tokens(*pooled[:3], efficient), pooled[3])
    return patch, anchor
