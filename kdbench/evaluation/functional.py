"""Pure evaluation functions."""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import Tensor


def topk_correct(logits: Tensor, target: Tensor, topk: Sequence[int] = (1, 5)) -> Tensor:
    """Whether each sample's label is among its k highest scores.

    Args:
        logits: ``[N, K]`` class scores.
        target: ``[N]`` labels in ``[0, K)``.
        topk: the k values; a k above K counts every sample as correct.

    Returns:
        Bool tensor ``[N, len(topk)]``.
    """
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f'topk_correct expects logits [N, K] and target [N], got '
                         f'{tuple(logits.shape)} and {tuple(target.shape)}.')
    kmax = min(max(topk), logits.shape[1])
    hits = logits.topk(kmax, dim=1).indices == target[:, None]     # [N, kmax]
    found = hits.cumsum(1) > 0
    return torch.stack([found[:, min(k, kmax) - 1] for k in topk], dim=1)


def topk_accuracy(logits: Tensor, target: Tensor, topk: Sequence[int] = (1, 5)) -> List[float]:
    """Top-k accuracies in percent, one per k (see :func:`topk_correct`)."""
    return (topk_correct(logits, target, topk).float().mean(0) * 100).tolist()
