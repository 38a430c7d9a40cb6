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

import torch.nn.functional as F
from torch import Tensor

from kdbench.registry import DISTILL_METHODS
from kdbench.task import labels

from .base import DistillMethod
from .dense import check_logit_pair, match_spatial_size, valid_mean


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
    check_logit_pair('kd_loss', student_logits, teacher_logits)
    teacher_logits = match_spatial_size(teacher_logits, student_logits)
    log_s = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_t = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    per_item = F.kl_div(log_s, log_t, log_target=True, reduction='none').sum(1)
    return valid_mean(per_item, target, ignore_index) * temperature ** 2


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
        self.require_one_tap('logits tap')
        self.temperature = self.positive('temperature', temperature)
        self.ignore_index = ignore_index

    def bind(self, student_points, teacher_points) -> None:
        self.check_same_classes(student_points, teacher_points)

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        tap = self.taps[0]
        target = None
        if self.ignore_index is not None:
            target = labels(data_samples, 'KD')
        loss = kd_loss(student[tap], teacher[tap], self.temperature, self.ignore_index, target)
        return {f'loss_{self.name}': self.loss_weight * loss}


__all__ = ['KD', 'kd_loss']
