"""Run connectors batch-wide but in image chunks, for cache-sized working sets on CPU.

On a CPU a loss over large feature maps spends much of its time moving memory: every
tensor of a batch of ``[8, 256, 128, 128]`` maps is 128 MiB, larger than the caches, and
glibc serves allocations above 32 MiB with fresh ``mmap``'d pages that the kernel zeroes
and faults in on first touch, at every step. Cutting the batch into chunks of at most
:data:`CHUNK_BYTES` per map keeps each intermediate in the cache and lets the allocator
reuse its heap. The maths stays the batch's: :func:`batch_norm_chunks` normalises every
chunk with the statistics of the whole batch, exactly as ``BatchNorm2d`` on the
concatenated chunks.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import torch
from torch import Tensor, nn

#: Largest chunk of one feature map (bytes) on CPU: well inside a 32 MiB L3 cache and
#: below glibc's largest ``mmap`` threshold (32 MiB).
CHUNK_BYTES = 16 * 2 ** 20


def chunk_size(x: Tensor, budget: Optional[int] = None) -> int:
    """Images per chunk for the ``[N, ...]`` tensor ``x``: ``N`` (no chunking) off the CPU,
    else the most images whose slice of ``x`` fits in ``budget`` bytes (default
    :data:`CHUNK_BYTES`; at least 1)."""
    budget = CHUNK_BYTES if budget is None else budget
    if x.device.type != 'cpu':
        return x.shape[0]
    per_image = x[:1].numel() * x.element_size()
    return max(1, min(x.shape[0], budget // max(per_image, 1)))


class _BatchNormChunks(torch.autograd.Function):
    """Training-mode BatchNorm over the concatenation of chunks, one chunk at a time.

    Forward: per-chunk mean and biased variance (``batch_norm_update_stats``), combined
    into the batch's (exact pooled formula), then each chunk normalised by the native
    kernel. Backward: per-chunk ``sum(g)`` and ``sum(g * x_hat)`` (the native backward's
    weight and bias gradients), summed over the chunks, then each chunk's input gradient
    ``w / sigma * (g - sum(g) / M - x_hat * sum(g * x_hat) / M)`` (``M`` values per
    channel): the gradient of ``BatchNorm2d`` on the whole batch.
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
        outputs = tuple(torch.batch_norm(chunk, weight, bias, mean, var, False, 0.0, eps, False)
                        for chunk in chunks)
        ctx.save_for_backward(weight, mean, var, *chunks)
        ctx.eps, ctx.total = eps, total
        ctx.mark_non_differentiable(mean, var)
        return (mean, var) + outputs

    @staticmethod
    def backward(ctx: Any, _mean_grad: Tensor, _var_grad: Tensor, *grads: Tensor):
        weight, mean, var, *chunks = ctx.saved_tensors
        grads = [torch.zeros_like(chunk) if grad is None else grad
                 for grad, chunk in zip(grads, chunks)]
        sums = [torch.ops.aten.native_batch_norm_backward(
            grad, chunk, weight, mean, var, None, None, False, ctx.eps, [False, True, True])
            for grad, chunk in zip(grads, chunks)]
        grad_weight = sum(part[1] for part in sums)          # sum(g * x_hat)
        grad_bias = sum(part[2] for part in sums)            # sum(g)
        invstd = torch.rsqrt(var + ctx.eps)
        scale = weight * invstd                              # dx = scale*g + slope*x + offset
        slope = -scale * invstd * grad_weight / ctx.total
        offset = -scale * grad_bias / ctx.total - slope * mean
        grad_chunks = tuple(_affine(chunk, slope, offset).add_(_affine(grad, scale))
                            for grad, chunk in zip(grads, chunks))
        return (grad_weight if ctx.needs_input_grad[0] else None,
                grad_bias if ctx.needs_input_grad[1] else None, None) + grad_chunks


def _affine(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """``weight * x + bias`` per channel of ``x`` ``[N, C, *]`` (``weight``, ``bias``: ``[C]``),
    in ``x``'s dtype. The eval-mode BatchNorm kernel with zero mean, unit variance and
    ``eps = 0``: on CPU about 4x faster than a broadcasting ``addcmul`` over small maps."""
    unit = weight.new_ones(weight.shape)
    return torch.batch_norm(x, weight, bias, torch.zeros_like(unit), unit, False, 0.0, 0.0,
                            False)


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


def connector_chunks(module: nn.Module, chunks: Sequence[Tensor]) -> List[Tensor]:
    """``module`` applied to the concatenation of ``chunks``, returned in the same chunks.

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
