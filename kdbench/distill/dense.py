"""Shared shape handling of dense (per-pixel) distillation losses."""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor


def check_logit_pair(loss: str, student_logits: Tensor, teacher_logits: Tensor) -> None:
    """Raise unless both logits have the same layout, batch size and classes."""
    if student_logits.dim() != teacher_logits.dim() or \
            student_logits.shape[:2] != teacher_logits.shape[:2]:
        raise ValueError(f'{loss}: student logits {tuple(student_logits.shape)} and teacher '
                         f'logits {tuple(teacher_logits.shape)} differ in batch size or number '
                         'of classes; teacher and student must predict the same classes.')


def match_spatial_size(teacher: Tensor, student: Tensor) -> Tensor:
    """``teacher`` ``[N, C, h, w]`` resized bilinearly to the student's ``H, W`` (a no-op
    when they agree or the inputs are not 4-D)."""
    if teacher.dim() == 4 and teacher.shape[2:] != student.shape[2:]:
        teacher = F.interpolate(teacher, size=student.shape[2:], mode='bilinear',
                                align_corners=False)
    return teacher


def labels_at(target: Tensor, size) -> Tensor:
    """Dense labels ``[N, H', W']`` at ``size`` (nearest neighbour; a no-op if they agree)."""
    if tuple(target.shape[1:]) != tuple(size):
        target = F.interpolate(target[:, None].float(), size=tuple(size),
                               mode='nearest')[:, 0].long()
    return target


def pixels_as_samples(logits: Tensor) -> Tensor:
    """``[N, K, H, W]`` -> ``[N*H*W, K]`` (each pixel a sample); ``[N, K]`` unchanged."""
    if logits.dim() == 2:
        return logits
    return logits.movedim(1, -1).reshape(-1, logits.shape[1])


def valid_mean(per_item: Tensor, target: Optional[Tensor], ignore_index: Optional[int]
               ) -> Tensor:
    """Mean of ``per_item`` over the positions whose label is not ``ignore_index``
    (all positions when ``ignore_index`` is None; 0 when none is valid)."""
    if ignore_index is None:
        return per_item.mean()
    if target is None:
        raise ValueError('ignore_index needs the target labels to know which positions to '
                         'ignore.')
    valid = labels_at(target, per_item.shape[1:]) != ignore_index
    return per_item.where(valid, 0.0).sum() / valid.sum().clamp(min=1)
