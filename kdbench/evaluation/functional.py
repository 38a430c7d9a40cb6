"""Pure evaluation functions."""
from __future__ import annotations

from typing import List, Sequence, Tuple

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


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int,
                     ignore_index: int = 255) -> Tensor:
    """Pixel confusion matrix of a prediction against its ground truth.

    Args:
        pred: predicted class ids, any shape (e.g. ``[N, H, W]`` or ``[H, W]``).
        target: ground-truth ids, same shape; ``ignore_index`` and ids outside
            ``[0, num_classes)`` are not counted.
        num_classes: ``K``.
        ignore_index: label of pixels to skip.

    Returns:
        ``[K, K]`` int64, rows = ground truth, columns = prediction.

    Raises:
        ValueError: shapes differ, or a counted pixel is predicted outside ``[0, K)``
            (the model predicts more classes than the dataset has).
    """
    if pred.shape != target.shape:
        raise ValueError(f'confusion_matrix: prediction {tuple(pred.shape)} and target '
                         f'{tuple(target.shape)} must have the same shape.')
    target, pred = target.long(), pred.long()
    valid = (target != ignore_index) & (target >= 0) & (target < num_classes)
    target, pred = target[valid], pred[valid]
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f'confusion_matrix: predicted class {int(pred.max())} is outside '
                         f'[0, {num_classes}); the model and the dataset must have the same '
                         'number of classes.')
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes ** 2)
    return counts.reshape(num_classes, num_classes)


def iou_from_confusion(cm: Tensor) -> Tuple[Tensor, float]:
    """Per-class IoU and mIoU of a ``[K, K]`` confusion matrix (rows = ground truth).

    ``IoU_k = cm[k, k] / (sum_j cm[k, j] + sum_i cm[i, k] - cm[k, k])``.

    Returns:
        ``(per_class_iou [K] float64, miou)``; a class absent from both prediction and
        ground truth has IoU NaN and does not count in ``miou`` (nanmean; NaN if none).
    """
    cm = torch.as_tensor(cm).double()
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f'iou_from_confusion expects a square [K, K] matrix, got '
                         f'{tuple(cm.shape)}.')
    hits = cm.diagonal()
    union = cm.sum(0) + cm.sum(1) - hits
    iou = torch.where(union > 0, hits / union.clamp(min=1), torch.nan)
    return iou, iou.nanmean().item()
