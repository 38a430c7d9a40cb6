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

import torch.nn.functional as F
from torch import Tensor


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
