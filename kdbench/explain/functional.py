"""Distance correlation in torch: bias-corrected dCor^2 and partial dCor (Szekely & Rizzo).

Used by UniCAM, FSS and RS (Adhane et al., "On Explaining Knowledge Distillation:
Measuring and Visualising the Knowledge Transfer Process", Sec. 3 and App. B). All
functions take ``[n, d]`` sample matrices, or ``[B, n, d]`` batches of them, run on any
device and are differentiable.

* Distances: ``torch.cdist`` in its exact (non-matmul) mode, so identical rows give 0
  and its backward is 0 there; never an ``n x n x d`` broadcast. The paper's
  ``sqrt(|x_i - x_j|^2 + eps)`` (Eq. 1) only guards that gradient, so no ``eps`` here.
* U-centring (Eq. 2): ``A_ij = a_ij - a_i./(n-2) - a_.j/(n-2) + a_../((n-1)(n-2))``,
  ``A_ii = 0``; inner product ``<A, B> = sum_{i != j} A_ij B_ij / (n (n - 3))`` (Eq. 4),
  hence ``n > 3``.
* ``dCor^2 = <A, B> / sqrt(<A, A> <B, B>)`` (0 when the denominator is 0), the unbiased
  estimator: it can be slightly negative for independent samples.
* Partial removal (Eq. 3): ``P_z(A) = A - <A, C> / <C, C> C``.

The values equal ``dcor.u_distance_correlation_sqr`` and ``dcor.partial_distance_correlation``.
"""
from __future__ import annotations

import torch
from torch import Tensor

_TINY = 1e-30


def _check(*samples: Tensor) -> int:
    """Common sample count of ``[.., n, d]`` inputs; clear errors otherwise."""
    for x in samples:
        if x.dim() not in (2, 3):
            raise ValueError(f'Distance correlation takes [n, d] or [B, n, d] samples, got '
                             f'shape {tuple(x.shape)}; flatten features to [n, d] first.')
    counts = {x.shape[-2] for x in samples}
    if len(counts) != 1:
        raise ValueError('Distance correlation needs the same number of samples n in every '
                         f'input, got shapes {[tuple(x.shape) for x in samples]}.')
    n = counts.pop()
    if n <= 3:
        raise ValueError(f'Bias-corrected distance correlation needs n > 3 samples, got n = {n} '
                         '(its inner product divides by n (n - 3)); use more images per batch.')
    return n


def _float(x: Tensor) -> Tensor:
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def u_centered_distances(x: Tensor) -> Tensor:
    """U-centred Euclidean distance matrix ``[.., n, n]`` of samples ``[.., n, d]``."""
    n = _check(x)
    x = _float(x)
    squeeze = x.dim() == 2
    x = x[None] if squeeze else x
    dist = torch.cdist(x, x, compute_mode='donot_use_mm_for_euclid_dist')
    rows = dist.sum(dim=-1, keepdim=True) / (n - 2)
    cols = dist.sum(dim=-2, keepdim=True) / (n - 2)
    total = dist.sum(dim=(-2, -1), keepdim=True) / ((n - 1) * (n - 2))
    centred = dist - rows - cols + total
    eye = torch.eye(n, dtype=torch.bool, device=x.device)
    centred = centred.masked_fill(eye, 0.0)
    return centred[0] if squeeze else centred


def u_inner(a: Tensor, b: Tensor) -> Tensor:
    """``<A, B> = sum(A * B) / (n (n - 3))`` of U-centred matrices ``[.., n, n]`` -> ``[..]``."""
    n = a.shape[-1]
    return (a * b).sum(dim=(-2, -1)) / (n * (n - 3))


def _safe_ratio(num: Tensor, den_sq: Tensor) -> Tensor:
    """``num / sqrt(den_sq)``, 0 where ``den_sq <= 0`` (no NaN, in values or gradients)."""
    ok = den_sq > _TINY
    return torch.where(ok, num / den_sq.clamp_min(_TINY).sqrt(), torch.zeros_like(num))


def project_out(a: Tensor, c: Tensor) -> Tensor:
    """``P_c(A) = A - <A, C> / <C, C> C``: ``a`` without its component along ``c``
    (U-centred ``[.., n, n]``); ``a`` itself where ``<C, C> = 0``."""
    cc = u_inner(c, c)
    ok = cc > _TINY
    coef = torch.where(ok, u_inner(a, c) / cc.clamp_min(_TINY), torch.zeros_like(cc))
    return a - coef[..., None, None] * c


def _correlation(a: Tensor, b: Tensor) -> Tensor:
    return _safe_ratio(u_inner(a, b), u_inner(a, a) * u_inner(b, b))


def distance_correlation_sqr(x: Tensor, y: Tensor) -> Tensor:
    """Bias-corrected squared distance correlation of paired samples.

    Args:
        x: ``[n, p]`` or ``[B, n, p]``.
        y: ``[n, q]`` or ``[B, n, q]`` (same ``n``; ``p`` and ``q`` may differ), n > 3.

    Returns:
        ``[]`` (or ``[B]``): about 0 for independent samples, 1 when ``y`` is a similarity
        transform of ``x`` (a distance-preserving map times a scale).
    """
    _check(x, y)
    return _correlation(u_centered_distances(x), u_centered_distances(y))


def partial_distance_correlation_sqr(x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    """Partial distance correlation ``R*^2(x, y; z)``: dCor^2 of ``x`` and ``y`` after
    removing from both what ``z`` explains (App. B, Def. 3).

    Args:
        x, y, z: ``[n, *]`` or ``[B, n, *]`` samples (same ``n`` > 3).

    Returns:
        ``[]`` (or ``[B]``), 0 when a projection vanishes (e.g. ``x`` is ``z``).
    """
    _check(x, y, z)
    a, b = residual_distances(x, z), residual_distances(y, z)
    return _correlation(a, b)


def residual_distances(x: Tensor, z: Tensor) -> Tensor:
    """U-centred distances of ``x`` with those of ``z`` projected out: UniCAM's unique
    features ``x | z`` (Eq. 3), ``[.., n, n]``."""
    return project_out(u_centered_distances(x), u_centered_distances(z))
