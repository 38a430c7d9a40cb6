"""KD: Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", NIPS-W 2015.

``loss = T^2 * mean_i KL(softmax(z_t,i / T) || softmax(z_s,i / T))`` where the KL is summed
over classes and the mean runs over samples (classification) or over valid pixels (dense).
Symbols: ``z_s`` = ``student_logits``, ``z_t`` = ``teacher_logits``, ``T`` = ``temperature``.
Recipes (docs/reference.md §1): CIFAR-100 T=4, CE 0.1, KD 0.9; ImageNet T=1, CE 0.5, KD 0.5.
Differences from the reference code: none for classification; for dense logits whose
spatial size differs, the teacher logits are resized bilinearly to the student's size.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from kdbench.registry import DISTILL_METHODS

from .base import DistillMethod


def kd_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 4.0,
            ignore_index: Optional[int] = None, target: Optional[Tensor] = None) -> Tensor:
    """Temperature-scaled KL divergence between teacher and student class distributions.

    Args:
        student_logits: ``[N, C]`` or dense ``[N, C, H, W]``.
        teacher_logits: same layout; dense teacher logits of another H, W are resized
            bilinearly to the student's.
        temperature: softening temperature ``T``; the loss is multiplied by ``T**2``.
        ignore_index: label of pixels/samples to exclude; needs ``target``.
        target: labels ``[N]`` or ``[N, H, W]`` used only with ``ignore_index``.

    Returns:
        Scalar loss (mean over the valid samples or pixels).
    """
    if student_logits.dim() != teacher_logits.dim() or student_logits.shape[:2] != \
            teacher_logits.shape[:2]:
        raise ValueError('kd_loss: student logits '
                         f'{tuple(student_logits.shape)} and teacher logits '
                         f'{tuple(teacher_logits.shape)} differ in batch size or number of '
                         'classes; teacher and student must predict the same classes.')
    if student_logits.dim() == 4 and student_logits.shape[2:] != teacher_logits.shape[2:]:
        teacher_logits = F.interpolate(teacher_logits, size=student_logits.shape[2:],
                                       mode='bilinear', align_corners=False)
    log_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    per_item = F.kl_div(log_s, log_t, log_target=True, reduction='none').sum(1)
    if ignore_index is None:
        return per_item.mean() * temperature ** 2
    if target is None:
        raise ValueError('kd_loss: ignore_index needs the target labels to know which '
                         'positions to ignore.')
    if target.shape[1:] != per_item.shape[1:]:
        target = F.interpolate(target[:, None].float(), size=per_item.shape[1:],
                               mode='nearest')[:, 0].long()
    valid = target != ignore_index
    total = torch.where(valid, per_item, 0.0).sum()
    return total / valid.sum().clamp(min=1) * temperature ** 2


@DISTILL_METHODS.register_module()
class KD(DistillMethod):
    """Logit distillation (:func:`kd_loss`) on the ``logits`` tap of both models.

    Args:
        temperature: softening temperature ``T``.
        loss_weight: weight of the KD term (CIFAR recipe 0.9, ImageNet 0.5).
        ignore_index: ignored label for dense (segmentation) logits, read from the
            batch's ``data_samples['label']``.
        taps: the logits tap name.
    """

    def __init__(self, temperature: float = 4.0, loss_weight: float = 0.9,
                 ignore_index: Optional[int] = None, taps: Sequence[str] = ('logits',)):
        super().__init__(taps, loss_weight)
        if len(self.taps) != 1:
            raise ValueError(f'KD reads exactly one logits tap, got taps={self.taps}.')
        if temperature <= 0:
            raise ValueError(f'KD temperature must be positive, got {temperature}.')
        self.temperature = float(temperature)
        self.ignore_index = ignore_index

    def bind(self, student_points, teacher_points) -> None:
        tap = self.taps[0]
        if student_points[tap].channels != teacher_points[tap].channels:
            raise ValueError(f"KD: the student's '{tap}' has {student_points[tap].channels} "
                             f"classes but the teacher's has {teacher_points[tap].channels}; "
                             'set the same num_classes in both model configs.')

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        tap = self.taps[0]
        target = None
        if self.ignore_index is not None:
            target = data_samples['label']
        loss = kd_loss(student[tap], teacher[tap], self.temperature, self.ignore_index, target)
        return {f'loss_{self.name}': self.loss_weight * loss}


__all__ = ['KD', 'kd_loss']
