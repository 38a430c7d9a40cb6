"""FitNet: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.

The student's guided layer, mapped by a regressor ``r`` to the teacher's shape, regresses
the teacher's hint layer:

    FitNet = loss_weight * mean((r(F_s) - F_t)^2)

Symbols -> arguments: ``F_s``/``F_t`` = the tap ``taps[0]`` of the student/teacher (the
``hint`` tap by default: MDistiller's feature index 2, the output of the second residual
stage on CIFAR networks), ``r`` = ConvReg = conv + BatchNorm + ReLU, ``loss_weight``
(100 in MDistiller's CIFAR-100 recipe, with CE 1.0).

ConvReg's conv follows the maps' relative size (from the taps' strides): 1x1 conv when
equal, 3x3 stride-2 conv when the student map is twice as large, 4x4 stride-2 transposed
conv when it is half as large (MDistiller/RepDistiller's rules).
Differences from the paper/official code: the paper trains in two stages (hint
pre-training, then KD); MDistiller's one-stage recipe (hint loss + CE) is followed.
MDistiller's other size case (a larger student map, not twice the teacher's: a conv with
kernel ``1 + H_s - H_t``) needs absolute sizes; kdbench raises there instead.
Segmentation (kdbench's setting): ``taps=('last_stage',)``, equal strides -> 1x1 regressor.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.registry import DISTILL_METHODS

from .base import DistillMethod


def hint_loss(student_feature: Tensor, teacher_feature: Tensor) -> Tensor:
    """Mean squared error between the regressed student feature and the teacher's hint.

    Args:
        student_feature: ``[N, C, H, W]`` (after the regressor).
        teacher_feature: the same shape.

    Returns:
        Scalar loss; gradients reach the student feature only.
    """
    if student_feature.shape != teacher_feature.shape:
        raise ValueError(f'hint_loss: the regressed student feature '
                         f'{tuple(student_feature.shape)} and the teacher hint '
                         f'{tuple(teacher_feature.shape)} differ in shape.')
    return F.mse_loss(student_feature.float(), teacher_feature.detach().float())


class ConvReg(nn.Sequential):
    """FitNet's regressor: conv (sized by the maps' relative size) + BatchNorm + ReLU.

    ``[N, C_s, H_s, W_s]`` -> ``[N, C_t, H_t, W_t]`` where ``H_s / H_t`` is 1, 2 or 1/2
    (``student_stride`` vs ``teacher_stride``); ``tap`` names the tap in errors.
    """

    def __init__(self, student_channels: int, teacher_channels: int, student_stride: int,
                 teacher_stride: int, tap: str = 'hint'):
        if student_stride == teacher_stride:
            conv = nn.Conv2d(student_channels, teacher_channels, 1)
        elif 2 * student_stride == teacher_stride:       # student map twice as large
            conv = nn.Conv2d(student_channels, teacher_channels, 3, stride=2, padding=1)
        elif student_stride == 2 * teacher_stride:       # student map half as large
            conv = nn.ConvTranspose2d(student_channels, teacher_channels, 4, stride=2,
                                      padding=1)
        else:
            raise ValueError(f"FitNet taps=('{tap}',): the student map (stride "
                             f'{student_stride}, {student_channels} channels) and the teacher '
                             f'hint (stride {teacher_stride}, {teacher_channels} channels) must '
                             'have the same size or differ by a factor of 2; choose other taps.')
        super().__init__(conv, nn.BatchNorm2d(teacher_channels), nn.ReLU())


@DISTILL_METHODS.register_module()
class FitNet(DistillMethod):
    """Hint learning (:func:`hint_loss`) through a :class:`ConvReg` regressor.

    Args:
        loss_weight: the hint loss weight (100 in MDistiller's CIFAR-100 recipe).
        taps: one spatial tap read from both models: ``hint`` (default; the classification
            networks' guided/hint layer) or e.g. ``last_stage`` (segmentation).
    """

    def __init__(self, loss_weight: float = 100.0, taps: Sequence[str] = ('hint',)):
        super().__init__(taps, loss_weight)
        self.require_one_tap()
        self.regressor: Optional[ConvReg] = None

    def bind(self, student_points, teacher_points) -> None:
        student, teacher = self.spatial_points(student_points, teacher_points)
        self.regressor = ConvReg(student.channels, teacher.channels, student.stride,
                                 teacher.stride, self.taps[0])

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        tap = self.taps[0]
        if self.regressor is None:
            raise RuntimeError('FitNet was not bound to its taps (the Distiller does it).')
        loss = hint_loss(self.regressor(student[tap]), teacher[tap])
        return {f'loss_{self.name}': self.loss_weight * loss}
