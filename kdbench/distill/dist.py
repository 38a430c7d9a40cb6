"""DIST: Huang et al., "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022.

With ``Y = softmax(Z / tau)`` row-wise (``[B, C]``: samples x classes) and the Pearson
correlation ``rho(u, v) = cos(u - mean(u), v - mean(v))``:

    inter = 1 - mean_i rho(Y_s[i, :], Y_t[i, :])      (per sample, over the classes)
    intra = 1 - mean_j rho(Y_s[:, j], Y_t[:, j])      (per class, over the batch)
    DIST  = loss_weight * tau^2 * (beta * inter + gamma * intra)

Symbols -> arguments: ``Z_s``/``Z_t`` = ``student_logits``/``teacher_logits``, ``tau`` =
``temperature``, ``beta``, ``gamma``, the outer weight = ``loss_weight``. Official recipes
(``docs/reference.md``, DIST): beta = gamma = 1, outer weight 2, CE 1; tau 1 on ImageNet,
4 on CIFAR-100. Segmentation (official code): each pixel is a sample (``[B, C, H, W]`` ->
``[B*H*W, C]``), tau 1, weight 1 on the logits.

Differences from the paper/official code: none in the loss (cosine with ``eps = 1e-8``
added to the product of the norms, as the code does). Teacher logits of another ``H, W``
are resized bilinearly to the student's. The official segmentation code also distils an
auxiliary head (weight 0.4); kdbench's DeepLabV3+ has none. Pixels labelled
``ignore_index`` are not excluded, as in the official code (the loss has no labels).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch.nn.functional as F
from torch import Tensor

from kdbench.registry import DISTILL_METHODS

from .base import DistillMethod
from .dense import check_logit_pair, match_spatial_size, pixels_as_samples


def pearson_correlation(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Row-wise Pearson correlation of ``[M, D]`` matrices -> ``[M]``."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def dist_loss(student_logits: Tensor, teacher_logits: Tensor, beta: float = 1.0,
              gamma: float = 1.0, temperature: float = 1.0) -> Tensor:
    """``tau^2 * (beta * inter + gamma * intra)`` (without DIST's outer weight).

    Args:
        student_logits: ``[B, C]`` or dense ``[B, C, H, W]`` (every pixel a sample).
        teacher_logits: same layout (dense ones of another ``H, W`` are resized bilinearly).
        beta, gamma: weights of the inter- and intra-class relation terms.
        temperature: ``tau``.

    Returns:
        Scalar loss; gradients reach the student logits only.
    """
    check_logit_pair('dist_loss', student_logits, teacher_logits)
    teacher_logits = match_spatial_size(teacher_logits.detach(), student_logits)
    y_s = F.softmax(pixels_as_samples(student_logits.float()) / temperature, dim=1)
    y_t = F.softmax(pixels_as_samples(teacher_logits.float()) / temperature, dim=1)
    inter = 1 - pearson_correlation(y_s, y_t).mean()
    intra = 1 - pearson_correlation(y_s.t(), y_t.t()).mean()
    return temperature ** 2 * (beta * inter + gamma * intra)


@DISTILL_METHODS.register_module()
class DIST(DistillMethod):
    """Relation distillation (:func:`dist_loss`) on the ``logits`` tap.

    Args:
        beta: inter-class relation weight.
        gamma: intra-class relation weight.
        temperature: ``tau`` (4 on CIFAR-100, 1 on ImageNet and segmentation).
        loss_weight: DIST's outer weight (2 on classification, 1 on segmentation).
        taps: the logits tap name.
    """

    def __init__(self, beta: float = 1.0, gamma: float = 1.0, temperature: float = 1.0,
                 loss_weight: float = 2.0, taps: Sequence[str] = ('logits',)):
        super().__init__(taps, loss_weight)
        self.require_one_tap('logits tap')
        self.beta, self.gamma = float(beta), float(gamma)
        self.temperature = self.positive('temperature', temperature)

    def bind(self, student_points, teacher_points) -> None:
        self.check_same_classes(student_points, teacher_points)

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        tap = self.taps[0]
        loss = dist_loss(student[tap], teacher[tap], self.beta, self.gamma, self.temperature)
        return {f'loss_{self.name}': self.loss_weight * loss}
