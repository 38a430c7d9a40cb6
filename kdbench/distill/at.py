"""AT: Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017 (activation-based).

``at(F) = normalize(mean_c F_c^p)`` flattened to ``[N, H*W]`` (L2 per sample), and
``loss = sum_taps mean((at(F_s) - at(F_t))^2)``, weighted by ``beta`` (= ``loss_weight``,
1000 in the paper/RepDistiller recipe). Symbols: ``F_s`` = ``student_feat``, ``F_t`` =
``teacher_feat``, ``p`` = ``p``. Channel counts may differ (the map averages channels).
Differences from the reference code: kdbench distils the last backbone stage by
default (``taps=('last_stage',)``); the CIFAR paper setting uses every stage but the stem
(``taps=('stage1', 'stage2', 'stage3')``). Maps of different H, W are average-pooled to
the smaller size (RepDistiller pools the larger one; identical when one is larger in both).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor

from kdbench.registry import DISTILL_METHODS

from .base import DistillMethod


def attention_map(feat: Tensor, p: float = 2) -> Tensor:
    """Spatial attention of a feature map: ``[N, C, H, W]`` -> ``[N, H*W]``, unit L2 norm."""
    if feat.dim() != 4:
        raise ValueError(f'attention_map expects [N, C, H, W], got {tuple(feat.shape)}.')
    return F.normalize(feat.float().pow(p).mean(1).flatten(1), dim=1)


def at_loss(student_feat: Tensor, teacher_feat: Tensor, p: float = 2) -> Tensor:
    """Mean squared difference of the attention maps of two ``[N, C, H, W]`` features.

    The map with the larger H (W) is adaptive-average-pooled to the smaller H (W).
    """
    if student_feat.dim() != 4 or teacher_feat.dim() != 4 or \
            student_feat.shape[0] != teacher_feat.shape[0]:
        raise ValueError('at_loss expects two [N, C, H, W] maps with the same N, got '
                         f'{tuple(student_feat.shape)} and {tuple(teacher_feat.shape)}.')
    size = (min(student_feat.shape[2], teacher_feat.shape[2]),
            min(student_feat.shape[3], teacher_feat.shape[3]))
    if student_feat.shape[2:] != size:
        student_feat = F.adaptive_avg_pool2d(student_feat, size)
    if teacher_feat.shape[2:] != size:
        teacher_feat = F.adaptive_avg_pool2d(teacher_feat, size)
    return (attention_map(student_feat, p) - attention_map(teacher_feat, p)).pow(2).mean()


@DISTILL_METHODS.register_module()
class AT(DistillMethod):
    """Attention transfer (:func:`at_loss`) summed over the given taps.

    Args:
        p: power of the activations, > 0.
        loss_weight: ``beta`` (1000 in the paper recipe).
        taps: feature taps read from both models (last backbone stage by default).
    """

    def __init__(self, p: float = 2, loss_weight: float = 1000.0,
                 taps: Sequence[str] = ('last_stage',)):
        super().__init__(taps, loss_weight)
        if not p > 0:
            raise ValueError(f'AT p must be > 0 (the power of the activations; 2 in the paper), '
                             f'got p={p}: set model.methods.<name>.p.')
        self.p = p

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        loss = sum(at_loss(student[tap], teacher[tap], self.p) for tap in self.taps)
        return {f'loss_{self.name}': self.loss_weight * loss}
