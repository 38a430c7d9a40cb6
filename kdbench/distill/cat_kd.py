"""CAT-KD: Guo et al., "Class Attention Transfer Based Knowledge Distillation", CVPR 2023.

Class activation maps ``CAM_k(x, y) = sum_j W[k, j] F_j(x, y)`` (no bias) come from the
final post-activation feature map before global pooling ``F`` (tap ``pre_pool``) and the
classifier weight ``W`` (tap ``classifier``). The CAT loss is

    beta * mean((phi(pool_r(CAM_s)) - phi(pool_r(B(CAM_t))))^2)

with ``pool_r`` adaptive average pooling to ``r x r`` (``resolution``), ``phi`` an optional
L2 normalisation of each per-sample per-class map over its ``r*r`` cells
(``normalize``), and ``B`` an optional binarisation of the teacher's CAMs at full
resolution (``binarize``: 1 where the CAM exceeds its mean absolute value over H, W).
The mean runs over ``N*K*r*r``. CAT-KD trains with ``CE_weight * CE + CAT`` and no logit
KD; the CE weight is the Distiller's ``student_loss_weight`` (0 = the paper's CAT-only).

On segmentation the per-class logit maps before upsampling already are class attention
maps (``K`` channels, stride 4 for DeepLabV3+): ``taps=('logits',)`` reads them directly
(the conv bias is included there; no anchor project offers this variant).

Partial transfer keeps, per sample, the ``num_cams`` classes with the highest
(``strategy='top'``) or lowest (``'bottom'``) scores of the converted teacher
(``GAP(CAM_t)``, i.e. logits without the FC bias).

Differences from the official code: partial transfer keeps exactly ``num_cams`` classes
and works for any number of classes (the official code is off by one and assumes 100);
ties in the ranking are broken by the lower class index (stable sort).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.registry import DISTILL_METHODS

from .base import DistillMethod
from .taps import TapPoint

STRATEGIES = ('top', 'bottom')


def class_activation_maps(feat: Tensor, classifier_weight: Tensor) -> Tensor:
    """CAMs ``[N, K, H, W]`` of a feature ``[N, C, H, W]`` and a classifier weight ``[K, C]``."""
    if feat.dim() != 4 or classifier_weight.dim() != 2 or \
            feat.shape[1] != classifier_weight.shape[1]:
        raise ValueError('class_activation_maps expects a feature map [N, C, H, W] and a '
                         f'classifier weight [K, C], got {tuple(feat.shape)} and '
                         f'{tuple(classifier_weight.shape)}: the tapped feature must be the '
                         'one the classifier pools (pre_pool).')
    return torch.einsum('nchw,kc->nkhw', feat, classifier_weight)


def binarize_cams(cams: Tensor) -> Tensor:
    """1 where a CAM exceeds the mean of its absolute value over H, W (per sample and
    class), else 0; ``[N, K, H, W]`` -> same shape."""
    threshold = cams.abs().mean(dim=(2, 3), keepdim=True)
    return (cams > threshold).to(cams.dtype)


def cat_loss(student_cams: Tensor, teacher_cams: Tensor, resolution: int = 2,
             normalize: bool = True, binarize: bool = False) -> Tensor:
    """Class attention transfer loss between CAMs ``[N, K, H, W]`` (H, W may differ).

    Binarise the teacher's CAMs (optional, full resolution), average-pool both to
    ``resolution x resolution``, L2-normalise each map over its cells (optional), and
    return the mean squared error over ``N*K*r*r``.
    """
    if student_cams.shape[:2] != teacher_cams.shape[:2] or student_cams.dim() != 4:
        raise ValueError(f'cat_loss: student CAMs {tuple(student_cams.shape)} and teacher CAMs '
                         f'{tuple(teacher_cams.shape)} must be [N, K, H, W] with the same N '
                         'and K (the same classes).')
    teacher_cams = teacher_cams.float()
    if binarize:
        teacher_cams = binarize_cams(teacher_cams)
    student = F.adaptive_avg_pool2d(student_cams.float(), resolution).flatten(2)
    teacher = F.adaptive_avg_pool2d(teacher_cams, resolution).flatten(2)
    if normalize:
        student, teacher = F.normalize(student, dim=2), F.normalize(teacher, dim=2)
    return F.mse_loss(student, teacher)


def select_cams(teacher_logits: Tensor, num_cams: int, strategy: str = 'top') -> Tensor:
    """Indices ``[N, num_cams]`` of the classes whose CAMs are transferred.

    Args:
        teacher_logits: ``[N, K]`` scores ranking the classes.
        num_cams: how many classes per sample, ``1 <= num_cams <= K``.
        strategy: ``'top'`` (highest scores first) or ``'bottom'`` (lowest first); ties
            go to the lower class index.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"select_cams strategy must be one of {STRATEGIES}, got '{strategy}'.")
    num_classes = teacher_logits.shape[1]
    if not 1 <= num_cams <= num_classes:
        raise ValueError(f'select_cams: num_cams must be in [1, {num_classes}], got {num_cams}.')
    order = torch.sort(teacher_logits, dim=1, descending=strategy == 'top', stable=True)
    return order.indices[:, :num_cams]


@DISTILL_METHODS.register_module()
class CATKD(DistillMethod):
    """Class attention transfer (:func:`cat_loss`) on CAMs built from the taps.

    Args:
        beta: weight of the CAT loss (per pair in docs/reference.md §3; CAT-only default 50).
        resolution: side ``r`` of the pooled CAMs.
        normalize: L2-normalise each pooled CAM.
        binarize: binarise the teacher's CAMs before pooling.
        num_cams: transfer only this many classes per sample (``None``: all); checked
            against the class count when the Distiller binds the method.
        strategy: ``'top'`` or ``'bottom'`` classes of the teacher for partial transfer.
        taps: the pre-pooling feature and the classifier-weight taps, or one tap whose
            output already is the class maps ``[N, K, H, W]`` (dense logits).

    The two-tap form needs a bias-free student classifier (:meth:`check_student`).
    """

    display_name = 'CAT-KD'

    def __init__(self, beta: float = 50.0, resolution: int = 2, normalize: bool = True,
                 binarize: bool = False, num_cams: Optional[int] = None, strategy: str = 'top',
                 taps: Sequence[str] = ('pre_pool', 'classifier')):
        super().__init__(taps, loss_weight=beta)
        if len(self.taps) not in (1, 2):
            raise ValueError('CATKD reads two taps (feature before pooling, classifier '
                             'weight) or one tap of class maps (dense logits), got '
                             f'taps={self.taps}.')
        if strategy not in STRATEGIES:
            raise ValueError(f"CATKD strategy must be one of {STRATEGIES}, got '{strategy}'.")
        if resolution < 1:
            raise ValueError(f'CATKD resolution must be >= 1, got {resolution}.')
        if num_cams is not None and num_cams < 1:
            raise ValueError(f'CATKD num_cams must be >= 1 (or None: all classes), got '
                             f'{num_cams}: set model.methods.<name>.num_cams.')
        self.resolution, self.normalize, self.binarize = int(resolution), normalize, binarize
        self.num_cams, self.strategy = num_cams, strategy

    def bind(self, student_points, teacher_points) -> None:
        classifier = self.taps[-1]
        for owner, points in (('student', student_points), ('teacher', teacher_points)):
            if len(self.taps) == 2 and points[classifier].param is None:
                raise ValueError(f"CATKD: the {owner}'s '{classifier}' tap must read the "
                                 "classifier's weight (a GAP-linear head).")
        if student_points[classifier].channels != teacher_points[classifier].channels:
            raise ValueError(f'CATKD: the student has {student_points[classifier].channels} '
                             f'classes but the teacher has {teacher_points[classifier].channels}'
                             '; CAMs are compared class by class, so both must match.')
        num_classes = student_points[classifier].channels
        if self.num_cams is not None and self.num_cams > num_classes:
            raise ValueError(f'CATKD num_cams must be in [1, {num_classes}] (the number of '
                             f'classes), got {self.num_cams}: set '
                             f'model.methods.{self.name}.num_cams.')

    def check_student(self, student: nn.Module, points: Mapping[str, TapPoint]) -> None:
        """CAMs are built from the classifier weight alone, and the CAT-KD recipe trains
        the student without a classifier bias: refuse a student classifier that has one
        (two-tap form only; dense logits include the conv bias by design)."""
        if len(self.taps) != 2:
            return
        head = student.get_submodule(points[self.taps[-1]].module)
        if getattr(head, 'bias', None) is not None:
            raise ValueError(
                f"CATKD ('{self.name}') needs a bias-free student classifier (CAMs use its "
                f"weight only; the CAT-KD recipe drops the bias), but the student's "
                f"'{points[self.taps[-1]].module}' has a bias: set "
                'model.student.classifier_bias=False (--cfg-options '
                'model.student.classifier_bias=False).')

    def cams(self, tapped: Dict[str, Tensor]) -> Tensor:
        """Class activation maps ``[N, K, H, W]`` from one model's tapped tensors."""
        if len(self.taps) == 1:
            return tapped[self.taps[0]]
        feat, classifier = self.taps
        return class_activation_maps(tapped[feat], tapped[classifier])

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        student_cams, teacher_cams = self.cams(student), self.cams(teacher)
        if self.num_cams is not None:
            keep = select_cams(teacher_cams.mean(dim=(2, 3)), self.num_cams, self.strategy)
            index = keep[:, :, None, None]
            student_cams = student_cams.gather(1, index.expand(-1, -1, *student_cams.shape[2:]))
            teacher_cams = teacher_cams.gather(1, index.expand(-1, -1, *teacher_cams.shape[2:]))
        loss = cat_loss(student_cams, teacher_cams, self.resolution, self.normalize,
                        self.binarize)
        return {f'loss_{self.name}': self.loss_weight * loss}
