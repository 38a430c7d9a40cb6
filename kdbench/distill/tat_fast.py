"""CPU paths of TaT's hierarchical loss: the same values as the reference functions of
:mod:`kdbench.distill.tat`, in another memory layout (why and how fast: ``docs/tat.md``).

:func:`select_path` is the one rule that picks how :class:`~kdbench.distill.tat.TaT`
computes its loss:

* ``'reference'``: the connectors on the whole batch, then
  :func:`~kdbench.distill.tat.tat_loss` (global) or
  :func:`~kdbench.distill.tat.tat_patch_group_loss` +
  :func:`~kdbench.distill.tat.tat_anchor_loss` (hierarchical). Always off the CPU, always
  in global mode, and whenever ``implementation='reference'``.
* ``'tiled'`` (CPU, hierarchical, :func:`tiles_first`): the student and teacher maps are
  cut into their patch groups *before* the connectors (:class:`GroupTiles`) and the losses
  run on those tiles (:func:`tiled_losses`), image chunk by image chunk.
* ``'chunked'`` (CPU, hierarchical, otherwise): the connectors and the reference losses
  run image chunk by image chunk.

Both CPU paths cut the batch into chunks of at most :data:`CHUNK_BYTES` per map
(:func:`chunked_loss`); the connectors' BatchNorm still uses the statistics of the whole
batch (:func:`batch_norm_chunks`), and the loss is the chunks' losses weighted by their
share of the batch, i.e. the mean over the batch.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attention import attention_precision, attention_tokens

#: ``TaT(implementation=...)``: ``'auto'`` lets :func:`select_path` choose, ``'reference'``
#: always runs the reference functions.
IMPLEMENTATIONS = ('auto', 'reference')
#: What :func:`select_path` returns.
PATHS = ('reference', 'chunked', 'tiled')
#: Largest chunk of one feature map (bytes) on the CPU paths (one image at least).
CHUNK_BYTES = 16 * 2 ** 20
#: Connectors that act on each position alone (they commute with cutting the map).
PER_POSITION = ('identity', 'conv1x1_bn')

Size = Tuple[int, int]


def check_implementation(implementation: str) -> None:
    """Raise a ``ValueError`` unless ``implementation`` is one of :data:`IMPLEMENTATIONS`."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f'TaT implementation must be one of {IMPLEMENTATIONS}, got '
                         f"'{implementation}'; 'reference' runs the reference functions "
                         "of kdbench/distill/tat.py, 'auto' may take a CPU path.")


def select_path(implementation: str, device_type: str, mode: str, kinds: Iterable[str],
                student_size: Sequence[int], teacher_size: Sequence[int],
                patches: Optional[Size] = None, groups: Optional[int] = None,
                kernel: Optional[Size] = None) -> str:
    """The path (:data:`PATHS`) that computes TaT's loss.

    ``'reference'`` when ``implementation == 'reference'``, the maps are not on the CPU
    (``device_type != 'cpu'``; the CPU paths were tuned and measured on CPUs only) or
    ``mode != 'hierarchical'``; else ``'tiled'`` when :func:`tiles_first` holds, else
    ``'chunked'``.

    Args:
        implementation: one of :data:`IMPLEMENTATIONS`.
        device_type: ``tensor.device.type`` of the features (``'cpu'``, ``'cuda'``, ...).
        mode: ``'global'`` or ``'hierarchical'``.
        kinds: the three connector kinds (``'identity'``, ``'conv1x1_bn'``, ...).
        student_size, teacher_size: ``(H, W)`` of the student and teacher maps.
        patches, groups, kernel: the hierarchical settings (``(n, m)``, ``g``, the anchor
            kernel); unused otherwise.
    """
    check_implementation(implementation)
    if implementation == 'reference' or device_type != 'cpu' or mode != 'hierarchical':
        return 'reference'
    if tiles_first(kinds, student_size, teacher_size, patches, groups, kernel):
        return 'tiled'
    return 'chunked'


def tiles_first(kinds: Iterable[str], student_size: Sequence[int],
                teacher_size: Sequence[int], patches: Size, groups: int, kernel: Size
                ) -> bool:
    """Whether the hierarchical losses can run on the maps cut into patch groups before
    the connectors: every connector acts per position (:data:`PER_POSITION`), student and
    teacher maps have one size, the ``n x m`` patches tile it exactly, the anchor cells
    (``kernel``) lie inside the patches and a group is a rectangle of patches
    (:func:`group_shape`)."""
    (n, m), (height, width) = patches, tuple(teacher_size)
    return (all(kind in PER_POSITION for kind in kinds)
            and tuple(student_size) == (height, width)
            and height % n == 0 and width % m == 0
            and (height // n) % kernel[0] == 0 and (width // m) % kernel[1] == 0
            and group_shape(patches, groups) is not None)


# ------------------------------------------------------------------------ image chunks

def chunk_size(x: Tensor, budget: Optional[int] = None) -> int:
    """Images per chunk of the ``[N, ...]`` tensor ``x``: the most images whose slice of
    ``x`` fits in ``budget`` bytes (default :data:`CHUNK_BYTES`), at least 1, at most
    ``N``."""
    budget = CHUNK_BYTES if budget is None else budget
    per_image = x[:1].numel() * x.element_size()
    return max(1, min(x.shape[0], budget // max(per_image, 1)))


def chunked_loss(connectors: Sequence[nn.Module], feat_s: Tensor, feat_t: Tensor,
                 loss: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor],
                 tiles: Optional[Tuple[Size, int]] = None,
                 chunk_bytes: Optional[int] = None) -> Tensor:
    """``loss(theta(s), phi(t), gamma(s), t)`` over the batch, one chunk of images at a time.

    Args:
        connectors: ``(theta, phi, gamma)``; they see the whole batch
            (:func:`connector_chunks`: BatchNorm statistics over all chunks).
        feat_s: student map ``[N, C_s, Hs, Ws]``.
        feat_t: teacher map ``[N, C_t, H, W]``.
        loss: the mean loss of one chunk's ``(query, key, value, target)``.
        tiles: ``(patches, groups)``: cut both maps into :class:`GroupTiles` before the
            connectors (only where :func:`tiles_first` holds); ``loss`` then receives
            tiles (:func:`tiled_losses`).
        chunk_bytes: largest chunk of either map (default :data:`CHUNK_BYTES`).

    Returns:
        The chunks' losses weighted by their share of the batch (scalar).
    """
    step = min(chunk_size(feat_s, chunk_bytes), chunk_size(feat_t, chunk_bytes))
    feats_s, feats_t = feat_s.split(step), feat_t.split(step)
    shares = [x.shape[0] / feat_t.shape[0] for x in feats_t]
    if tiles is not None:
        feats_s = [GroupTiles.apply(x, *tiles) for x in feats_s]
        feats_t = [GroupTiles.apply(x, *tiles) for x in feats_t]
    theta, phi, gamma = connectors
    chunks = zip(connector_chunks(theta, feats_s), connector_chunks(phi, feats_t),
                 connector_chunks(gamma, feats_s), feats_t)
    return sum(loss(*chunk) * share for chunk, share in zip(chunks, shares))


def connector_chunks(module: nn.Module, chunks: Sequence[Tensor]) -> List[Tensor]:
    """``module`` applied to the concatenation of ``chunks`` (each ``[n_i, C, H, W]``),
    returned in the same chunks.

    A ``Sequential`` ending in a BatchNorm (and without other BatchNorms) runs its other
    layers per chunk and the BatchNorm through :func:`batch_norm_chunks`; a module without
    BatchNorm runs per chunk; anything else runs once on the concatenated batch.
    """
    if len(chunks) == 1:
        return [module(chunks[0])]
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return [module(chunk) for chunk in chunks]
    if isinstance(module, nn.Sequential) and norms == [module[-1]]:
        return batch_norm_chunks(module[-1], [module[:-1](chunk) for chunk in chunks])
    return list(module(torch.cat(list(chunks))).split([len(chunk) for chunk in chunks]))


def batch_norm_chunks(bn: nn.modules.batchnorm._BatchNorm, chunks: Sequence[Tensor]
                      ) -> List[Tensor]:
    """``bn`` applied to the concatenation of ``chunks`` (each ``[n_i, C, H, W]``), returned
    in the same chunks: batch statistics over all chunks in training mode (and the running
    statistics updated as ``bn`` does), the running statistics in eval mode."""
    exponential_average_factor = 0.0 if bn.momentum is None else bn.momentum
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            exponential_average_factor = 1.0 / float(bn.num_batches_tracked)
    use_batch_stats = bn.training or bn.running_mean is None
    if not use_batch_stats:
        return [bn(chunk) for chunk in chunks]
    channels = chunks[0].shape[1]
    ref = chunks[0]
    weight = bn.weight if bn.weight is not None else ref.new_ones(channels)
    bias = bn.bias if bn.bias is not None else ref.new_zeros(channels)
    mean, var, *outputs = _BatchNormChunks.apply(weight, bias, bn.eps, *chunks)
    if bn.training and bn.running_mean is not None:
        total = sum(chunk.numel() // channels for chunk in chunks)
        with torch.no_grad():
            factor = exponential_average_factor
            bn.running_mean.mul_(1 - factor).add_(factor * mean)
            bn.running_var.mul_(1 - factor).add_(factor * var * (total / max(total - 1, 1)))
    return outputs


class _BatchNormChunks(torch.autograd.Function):
    """Training-mode BatchNorm over the concatenation of chunks, one chunk at a time.

    ``apply(weight [C], bias [C], eps, *chunks [n_i, C, H, W])`` returns ``(mean [C],
    var [C], *outputs)``: the batch mean and biased variance over all chunks (the exact
    pooled formula of the chunks' own statistics; not differentiable) and each chunk
    normalised with them, equal to ``BatchNorm2d`` in training mode on the concatenated
    chunks, split back. The backward returns that function's gradients: ``sum(g * x_hat)``
    and ``sum(g)`` summed over the chunks for ``weight`` and ``bias``, and for each chunk
    ``w / sigma * (g - sum(g) / M - x_hat * sum(g * x_hat) / M)`` (``M`` values per channel
    in the whole batch).
    """

    @staticmethod
    def forward(ctx: Any, weight: Tensor, bias: Tensor, eps: float, *chunks: Tensor):
        counts = [chunk.numel() // chunk.shape[1] for chunk in chunks]
        total = sum(counts)
        stats = [torch.batch_norm_update_stats(chunk, None, None, 0.0) for chunk in chunks]
        mean = sum(count * part_mean for count, (part_mean, _) in zip(counts, stats)) / total
        var = sum(count * (part_var + (part_mean - mean) ** 2)
                  for count, (part_mean, part_var) in zip(counts, stats)) / total
        # Statistics in the parameters' dtype (float32 for bfloat16 maps under autocast).
        mean, var = mean.to(weight.dtype), var.to(weight.dtype)
        # Each chunk is eval-mode BatchNorm with the batch statistics, recorded on detached
        # leaves so that the backward gets sum(g * x_hat) and sum(g) from autograd.
        leaves = weight.detach().requires_grad_(), bias.detach().requires_grad_()
        with torch.enable_grad():
            graphs = [F.batch_norm(chunk.detach(), mean, var, *leaves, training=False,
                                   eps=eps) for chunk in chunks]
        ctx.save_for_backward(weight, mean, var, *chunks)
        ctx.eps, ctx.total, ctx.graphs, ctx.leaves = eps, total, graphs, leaves
        ctx.mark_non_differentiable(mean, var)
        return (mean, var) + tuple(graph.detach() for graph in graphs)

    @staticmethod
    def backward(ctx: Any, _mean_grad: Tensor, _var_grad: Tensor, *grads: Tensor):
        weight, mean, var, *chunks = ctx.saved_tensors
        grads = [torch.zeros_like(chunk) if grad is None else grad
                 for grad, chunk in zip(grads, chunks)]
        sums = [torch.autograd.grad(graph, ctx.leaves, grad)
                for graph, grad in zip(ctx.graphs, grads)]
        grad_weight = sum(part[0] for part in sums)          # sum(g * x_hat)
        grad_bias = sum(part[1] for part in sums)            # sum(g)
        invstd = torch.rsqrt(var + ctx.eps)
        scale = weight * invstd                              # dx = scale*g + slope*x + offset
        slope = -scale * invstd * grad_weight / ctx.total
        offset = -scale * grad_bias / ctx.total - slope * mean
        grad_chunks = tuple(_affine(chunk, slope, offset).add_(_affine(grad, scale))
                            for grad, chunk in zip(grads, chunks))
        return (grad_weight if ctx.needs_input_grad[0] else None,
                grad_bias if ctx.needs_input_grad[1] else None, None) + grad_chunks


def _affine(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``weight * x + bias`` per channel of ``x`` ``[N, C, *]`` (``weight``, ``bias``:
    ``[C]``), in ``x``'s dtype and layout: the eval-mode BatchNorm kernel with zero mean,
    unit variance and ``eps = 0``."""
    unit = weight.new_ones(weight.shape)
    return torch.batch_norm(x, weight, bias, torch.zeros_like(unit), unit, False, 0.0, 0.0,
                            False)


# ------------------------------------------------------------------------ patch-group tiles

def group_shape(patches: Size, groups: int) -> Optional[Size]:
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
    """``apply(x [N, C, H, W], patches (n, m), groups g)``: TaT's patch groups of ``x`` as a
    channels-last ``[N*g, C, h, w*P]`` tensor whose memory is ``[N, g, h, w, P, C]``
    (``h, w = H/n, W/m``, ``P = n*m/g``; ``H, W`` divisible by ``n, m`` and
    :func:`group_shape` not ``None``). Element ``[i*g + j, c, y, p*w + x]`` is channel
    ``p*C + c`` at ``(y, x)`` of group ``j`` of image ``i`` in
    :func:`~kdbench.distill.tat.patch_group`. The backward returns a contiguous
    ``[N, C, H, W]`` gradient. Both directions go through each image's ``[H*W, C]`` token
    map (a 2-D transpose and a copy of ``C``-channel rows).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, patches: Size, groups: int) -> Tensor:
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


def _sizes(shape: Sequence[int], patches: Size, groups: int) -> Tuple[int, int, int, int]:
    """Groups per image, patch height and width, patches per group."""
    n, m = patches
    return groups, shape[2] // n, shape[3] // m, n * m // groups


def _token_layout(shape: Sequence[int], patches: Size, groups: int
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


def tiled_losses(query: Tensor, key: Tensor, value: Tensor, target: Tensor, groups: int,
                 patches_per_group: int, kernel: Size, efficient: Optional[bool] = None
                 ) -> Tuple[Tensor, Tensor]:
    """TaT's patch-group and anchor losses from :class:`GroupTiles`.

    Args:
        query, key, value, target: ``[B * g, C, h, w * P]`` channels-last group tiles of
            the embeddings and the teacher map of ``B`` images (memory
            ``[B, g, h, w, P, C]``).
        groups: ``g``.
        patches_per_group: ``P``.
        kernel: anchor pooling kernel (its cells inside a patch).
        efficient: the anchor attention's kernel choice (:func:`attention_tokens`).

    Returns:
        ``(patch_group_loss, anchor_loss)``: fp32 scalars (fp64 for fp64), equal to
        :func:`~kdbench.distill.tat.tat_patch_group_loss` and
        :func:`~kdbench.distill.tat.tat_anchor_loss` on the uncut maps (attention and
        squared error do not depend on the order of the positions, the same in all four
        maps).
    """
    tiles, channels, h, wide = query.shape
    images, w, features = tiles // groups, wide // patches_per_group, \
        patches_per_group * channels
    with attention_precision(query) as dtype:
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
