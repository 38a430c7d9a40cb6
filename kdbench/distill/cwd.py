"""CWD: Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021.

Each channel's map is turned into a distribution over its ``H*W`` positions,
``phi(y_c) = softmax(y_c / tau)``, and the student's matches the teacher's:

    CWD = loss_weight * tau^2 / (N * C) * sum_{n, c} KL(phi(y_t,nc) || phi(y_s,nc))

Symbols -> arguments: ``y_s``/``y_t`` = ``student_map``/``teacher_map`` ``[N, C, H, W]``
(tap ``taps[0]``, the logit maps by default), ``tau`` = ``temperature``. Defaults: the
official Cityscapes command (``docs/reference.md``, CWD): logits, tau 4, weight 3; the
authors' later configs use tau 1 with weight 5 (Cityscapes) or 10 (ADE20K).

Differences from the paper/official code: none in the loss. On features whose channel
counts differ (``taps=('last_stage',)``), a 1x1 convolution maps the student's channels to
the teacher's (the paper's alignment layer; kdbench's setting on classification, where CWD
has no official recipe). A teacher map of another ``H, W`` is resized bilinearly to the
student's.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.registry import DISTILL_METHODS

from .base import DistillMethod
from .dense import match_spatial_size


def cwd_loss(student_map: Tensor, teacher_map: Tensor, temperature: float = 4.0) -> Tensor:
    """Channel-wise KL of spatial distributions: ``sum KL / (N * C) * tau^2``.

    Args:
        student_map: ``[N, C, H, W]``.
        teacher_map: ``[N, C, h, w]`` (resized bilinearly to ``H, W`` if it differs).
        temperature: ``tau``.

    Returns:
        Scalar loss; gradients reach the student map only.
    """
    if student_map.dim() != 4 or teacher_map.dim() != 4 or \
            student_map.shape[:2] != teacher_map.shape[:2]:
        raise ValueError('cwd_loss expects two [N, C, H, W] maps with the same N and C, got '
                         f'{tuple(student_map.shape)} and {tuple(teacher_map.shape)}; align '
                         'the channels with a connector first.')
    teacher_map = match_spatial_size(teacher_map.detach(), student_map)
    n, c = student_map.shape[:2]
    log_s = F.log_softmax(student_map.float().flatten(2) / temperature, dim=2)
    log_t = F.log_softmax(teacher_map.float().flatten(2) / temperature, dim=2)
    kl = F.kl_div(log_s, log_t, log_target=True, reduction='sum')
    return kl / (n * c) * temperature ** 2


@DISTILL_METHODS.register_module()
class CWD(DistillMethod):
    """Channel-wise distillation (:func:`cwd_loss`) on one dense tap.

    Args:
        temperature: ``tau`` (4 in the official Cityscapes command; 1 in later configs).
        loss_weight: the loss weight (3 with tau 4; 5 or 10 with tau 1).
        taps: the dense tap read from both models (the logit maps by default); with
            different channel counts a 1x1 conv maps the student's to the teacher's.
    """

    def __init__(self, temperature: float = 4.0, loss_weight: float = 3.0,
                 taps: Sequence[str] = ('logits',)):
        super().__init__(taps, loss_weight)
        self.require_one_tap()
        self.temperature = self.positive('temperature', temperature)
        self.connector: nn.Module = nn.Identity()

    def bind(self, student_points, teacher_points) -> None:
        student, teacher = self.spatial_points(student_points, teacher_points)
        if student.channels != teacher.channels:
            self.connector = nn.Conv2d(student.channels, teacher.channels, 1)

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        tap = self.taps[0]
        loss = cwd_loss(self.connector(student[tap]), teacher[tap], self.temperature)
        return {f'loss_{self.name}': self.loss_weight * loss}
