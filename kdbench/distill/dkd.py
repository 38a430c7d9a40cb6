"""DKD: Zhao et al., "Decoupled Knowledge Distillation", CVPR 2022.

With ``p = softmax(z / T)`` over the ``K`` classes and ``g`` the ground-truth class:

    TCKD = KL([p_t,g, 1 - p_t,g] || [p_s,g, 1 - p_s,g])                  (target class)
    NCKD = KL(softmax(z_t / T - 1000 * 1_g) || softmax(z_s / T - 1000 * 1_g))  (non-target)
    DKD  = min(epoch / warmup, 1) * (alpha * TCKD + beta * NCKD) * T^2

averaged over the samples. Symbols -> arguments: ``z_s``/``z_t`` = ``student_logits``/
``teacher_logits``, ``g`` = ``target``, ``T`` = ``temperature``, ``alpha``, ``beta``,
``warmup`` (epochs, counted from 1: the first epoch trains at ``1 / warmup``; the epoch comes
from the method's ``progress``, see :class:`~kdbench.hooks.MethodProgressHook`).
Recipes (official MDistiller configs; ``docs/reference.md``, DKD): CIFAR-100 CE 1.0,
alpha 1.0, T 4, warmup 20, beta 8 / 6 / 2 per pair; ImageNet ResNet-34 -> ResNet-18 CE 1.0,
alpha 1.0, beta 0.5, T 1, warmup 1 (ResNet-50 -> MobileNetV1: beta 2).

Differences from the paper/official code: the NCKD distributions mask the ground-truth
logit with ``-1000`` after dividing by ``T``, as the official code does (the paper removes
the class from the softmax; equal up to ``exp(-1000)``); TCKD's two-bin log-probabilities
are computed with log-sum-exp instead of ``log`` of the summed probabilities (the same
values, without ``log(0)``). Dense logits ``[N, K, H, W]`` (segmentation) are kdbench's own
setting: every pixel is a sample, pixels labelled ``ignore_index`` are left out, the mean
runs over the valid pixels, labels are resized to the logits by nearest neighbour and
teacher logits of another size bilinearly. Outside a Runner (no progress) the warm-up
factor is 1.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from kdbench.registry import DISTILL_METHODS
from kdbench.task import labels

from .base import DistillMethod
from .dense import check_logit_pair, labels_at, match_spatial_size, pixels_as_samples, valid_mean

#: The official code's mask value for the ground-truth logit in NCKD (after dividing by T).
GT_MASK = 1000.0


def dkd_loss(student_logits: Tensor, teacher_logits: Tensor, target: Tensor,
             alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0, *,
             ignore_index: Optional[int] = None) -> Tensor:
    """``(alpha * TCKD + beta * NCKD) * T^2``, averaged over samples (no warm-up factor).

    Args:
        student_logits: ``[N, K]`` or dense ``[N, K, H, W]``.
        teacher_logits: same layout (dense ones of another ``H, W`` are resized bilinearly).
        target: class labels ``[N]`` or ``[N, H', W']`` (resized to ``H, W`` by nearest).
        alpha, beta: weights of TCKD and NCKD.
        temperature: ``T``; the loss is multiplied by ``T**2``.
        ignore_index: label of samples/pixels to leave out of the mean.

    Returns:
        Scalar loss; gradients reach the student logits only.
    """
    check_logit_pair('dkd_loss', student_logits, teacher_logits)
    teacher_logits = match_spatial_size(teacher_logits.detach(), student_logits)
    dense = student_logits.dim() == 4
    labels = labels_at(target, student_logits.shape[2:]) if dense else target
    flat = labels if ignore_index is None else labels.where(labels != ignore_index, 0)
    flat = flat.reshape(-1)
    s = pixels_as_samples(student_logits.float()) / temperature
    t = pixels_as_samples(teacher_logits.float()) / temperature
    gt = F.one_hot(flat, s.shape[1]).bool()
    per_item = alpha * _tckd(s, t, gt) + beta * _nckd(s, t, gt)
    return valid_mean(per_item.reshape(labels.shape), labels, ignore_index) * temperature ** 2


def _binary_log_probs(scaled: Tensor, gt: Tensor) -> Tensor:
    """``[M, K]`` scaled logits -> ``[M, 2]``: log p(target class), log p(the others)."""
    total = scaled.logsumexp(1)
    target = scaled.masked_fill(~gt, float('-inf')).logsumexp(1)
    others = scaled.masked_fill(gt, float('-inf')).logsumexp(1)
    return torch.stack([target - total, others - total], 1)


def _tckd(s: Tensor, t: Tensor, gt: Tensor) -> Tensor:
    """Per-sample KL between the teacher's and student's target/non-target split."""
    return F.kl_div(_binary_log_probs(s, gt), _binary_log_probs(t, gt), log_target=True,
                    reduction='none').sum(1)


def _nckd(s: Tensor, t: Tensor, gt: Tensor) -> Tensor:
    """Per-sample KL between the non-target distributions (ground truth masked out)."""
    log_s = F.log_softmax(s - GT_MASK * gt, dim=1)
    log_t = F.log_softmax(t - GT_MASK * gt, dim=1)
    return F.kl_div(log_s, log_t, log_target=True, reduction='none').sum(1)


@DISTILL_METHODS.register_module()
class DKD(DistillMethod):
    """Decoupled KD (:func:`dkd_loss`) on the ``logits`` tap, ramped up over ``warmup``
    epochs.

    Args:
        alpha: TCKD weight.
        beta: NCKD weight (CIFAR-100 per pair: 8, 6 or 2; ImageNet 0.5).
        temperature: ``T`` (4 on CIFAR-100, 1 on ImageNet).
        warmup: epochs of the linear ramp ``min(epoch / warmup, 1)`` (20 on CIFAR-100,
            1 on ImageNet).
        loss_weight: extra factor on the whole term (1 in the official recipes).
        ignore_index: ignored label of dense (segmentation) logits.
        taps: the logits tap name.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0,
                 warmup: float = 20, loss_weight: float = 1.0,
                 ignore_index: Optional[int] = None, taps: Sequence[str] = ('logits',)):
        super().__init__(taps, loss_weight)
        self.require_one_tap('logits tap')
        if temperature <= 0 or warmup <= 0:
            raise ValueError('DKD temperature and warmup must be positive, got '
                             f'temperature={temperature}, warmup={warmup}.')
        self.alpha, self.beta = float(alpha), float(beta)
        self.temperature, self.warmup = float(temperature), float(warmup)
        self.ignore_index = ignore_index

    def bind(self, student_points, teacher_points) -> None:
        self.check_same_classes(student_points, teacher_points)

    def warmup_factor(self) -> float:
        """``min(epoch / warmup, 1)`` from :attr:`progress` (1 without progress)."""
        if self.progress is None:
            if self.training:
                warnings.warn('DKD has no training progress (MethodProgressHook is not among '
                              "the runner's custom_hooks): training without its warm-up.")
            return 1.0
        return min(self.progress.epoch / self.warmup, 1.0)

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        tap = self.taps[0]
        loss = dkd_loss(student[tap], teacher[tap], labels(data_samples, 'DKD'), self.alpha,
                        self.beta, self.temperature, ignore_index=self.ignore_index)
        return {f'loss_{self.name}': self.loss_weight * self.warmup_factor() * loss}
