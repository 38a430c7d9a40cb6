"""Saliency maps of task models: CAM, Grad-CAM / HiResCAM and UniCAM.

Every function returns maps ``[N, H, W]`` at the input's size, each min-max normalised
to ``[0, 1]`` (an all-constant map becomes 0), computed deterministically. Layers are
named by the model's taps (``stage1``, ``last_stage``, ... of its ``tap_points`` table).

* CAM (Zhou et al., CVPR 2016): ``sum_j W[c, j] F_j`` of a GAP-linear head (taps
  ``pre_pool`` and ``classifier``, :func:`kdbench.explain.model_cams`), no ReLU.
* Grad-CAM (Selvaraju et al., ICCV 2017) and HiResCAM (Draelos & Carin, 2020) through the
  ``grad-cam`` package, for the score of :class:`ClassMaskTarget`: the class logit of
  a classifier, or for a segmentor the class logit summed over the pixels predicted as
  that class (the class-and-mask target of the package's segmentation tutorial).
* UniCAM (Adhane et al., Sec. 3.1, Alg. 1): see :func:`unicam`.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint, Taps, resolve_taps

from .cams import model_cams
from .functional import partial_distance_correlation_sqr

#: Gradient-weighted CAM variants of the ``grad-cam`` package (class names).
GRAD_CAM_METHODS = {'gradcam': 'GradCAM', 'hirescam': 'HiResCAM'}
_FLAT = 1e-12


def normalise_maps(maps: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear upsampling of ``[N, h, w]`` maps to ``size`` ``(H, W)`` and per-map min-max
    to ``[0, 1]`` (flat maps -> 0). Returns float ``[N, H, W]`` on the CPU."""
    maps = F.interpolate(maps.detach().float().cpu()[:, None], size=tuple(size),
                         mode='bilinear', align_corners=False)[:, 0]
    low = maps.amin(dim=(1, 2), keepdim=True)
    span = maps.amax(dim=(1, 2), keepdim=True) - low
    return torch.where(span > _FLAT, (maps - low) / span.clamp_min(_FLAT),
                       torch.zeros_like(maps))


def feature_point(model: nn.Module, tap: str, owner: str) -> TapPoint:
    """The tap point of a spatial feature ``[N, C, h, w]`` named ``tap``; clear errors for
    unknown taps and parameter taps."""
    point = resolve_taps(model, [tap], owner)[tap]
    if point.param is not None:
        raise ValueError(f"Tap '{tap}' of the {owner} reads a parameter ({point.param}); "
                         'saliency maps need a feature tap such as stage1 or last_stage.')
    return point


def cam_maps(model: nn.Module, inputs: Tensor, classes: Tensor, owner: str = 'model'
             ) -> Tensor:
    """CAMs ``[N, H, W]`` of ``classes`` ``[N]`` for a GAP-linear classifier on ``inputs``
    ``[N, 3, H, W]``."""
    cams, _ = model_cams(model, inputs, owner)
    chosen = cams[torch.arange(len(classes)), classes.to(cams.device)]
    return normalise_maps(chosen, inputs.shape[-2:])


class ClassMaskTarget:
    """Grad-CAM score of one sample for class ``category``.

    Classifier output ``[K]``: the class logit. Segmentor output ``[K, H, W]``: the class
    logit summed over the pixels whose prediction (argmax, no gradient) is the class;
    over all pixels if none is. With ``softmax=True`` the class's softmax probability
    (over ``K``) takes the logit's place (the ``grad-cam`` package's
    ``ClassifierOutputSoftmaxTarget``, which the official UniCAM scripts use).
    """

    def __init__(self, category: int, softmax: bool = False):
        self.category = int(category)
        self.softmax = softmax

    def __call__(self, output: Tensor) -> Tensor:
        if output.dim() not in (1, 3):
            raise ValueError(f'ClassMaskTarget takes [K] or [K, H, W] outputs, got '
                             f'{tuple(output.shape)}.')
        score = output.softmax(dim=0) if self.softmax else output
        if output.dim() == 1:
            return score[self.category]
        mask = output.detach().argmax(dim=0) == self.category
        if not mask.any():
            mask = torch.ones_like(mask)
        return (score[self.category] * mask).sum()


def grad_cam(model: nn.Module, inputs: Tensor, tap: str, classes: Tensor,
             method: str = 'gradcam', owner: str = 'model', softmax: bool = False) -> Tensor:
    """Grad-CAM (or HiResCAM) maps ``[N, H, W]`` at ``tap`` for ``classes`` ``[N]``.

    Args:
        model: a task model whose ``tensor`` mode returns logits ``[N, K]`` or
            ``[N, K, H, W]`` (segmentation: :class:`ClassMaskTarget`).
        inputs: preprocessed batch ``[N, 3, H, W]``.
        tap: feature tap of the target layer.
        classes: target class per image.
        method: ``'gradcam'`` or ``'hirescam'``.
        softmax: differentiate the class's softmax probability instead of its logit.
    """
    import pytorch_grad_cam

    if method not in GRAD_CAM_METHODS:
        raise ValueError(f"Unknown CAM method '{method}'; use one of "
                         f'{", ".join(GRAD_CAM_METHODS)}.')
    layer = model.get_submodule(feature_point(model, tap, owner).module)
    was_training = model.training
    cam = getattr(pytorch_grad_cam, GRAD_CAM_METHODS[method])(model, [layer])
    try:
        with torch.enable_grad():
            maps = cam(inputs, [ClassMaskTarget(int(c), softmax) for c in classes])
    finally:
        cam.activations_and_grads.release()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return normalise_maps(torch.from_numpy(maps), inputs.shape[-2:])


def _features(model: nn.Module, point: TapPoint, tap: str, inputs: Tensor) -> Tensor:
    with Taps(model, {tap: point}) as taps:
        model(inputs)
        return taps[tap]


#: Tap of the final feature map (before a classifier's pooling), then the fallback.
FINAL_TAPS = ('pre_pool', 'last_stage')


def final_feature_tap(model: nn.Module, owner: str = 'model') -> str:
    """The tap of ``model``'s final feature map: ``pre_pool`` (GAP-linear classifiers)
    or ``last_stage`` (e.g. segmentors)."""
    table = getattr(model, 'tap_points', None) or {}
    for name in FINAL_TAPS:
        if name in table:
            return name
    raise KeyError(f'The {owner} declares none of the taps {", ".join(FINAL_TAPS)}, so its '
                   f'final features are unknown (taps: {", ".join(sorted(table))}).')


def _pooled_final(model: nn.Module, inputs: Tensor, owner: str, tap: str = '',
                  point: Optional[TapPoint] = None) -> Tuple[Tensor, Optional[Tensor]]:
    """``(pooled final features [N, C], activation at tap [N, C', h, w] or None)``."""
    final = final_feature_tap(model, owner)
    points = {'_final': feature_point(model, final, owner)}
    if point is not None:
        points[tap] = point
    with Taps(model, points) as taps:
        model(inputs)
        return taps['_final'].mean(dim=(2, 3)), taps[tap] if point is not None else None


def unicam(model: nn.Module, given: nn.Module, inputs: Tensor, tap: str,
           label_embeddings: Tensor, owners: Sequence[str] = ('student', 'base'),
           features: str = 'layer') -> Tensor:
    """UniCAM maps ``[N, H, W]``: where ``model``'s features at ``tap`` carry label
    information that ``given``'s features do not.

    ``unicam(student, base, ...)`` shows the distilled features, ``unicam(base, student,
    ...)`` the residual ones. With ``A`` the model's activation ``[N, C, h, w]`` at
    ``tap``, ``x`` the scored features of the model, ``z`` the other model's and ``g`` the
    label embeddings ``[N, D]`` of the batch, the score is the batch-level partial
    distance correlation ``s = R*^2(x, g; z)`` (the dCor of the unique features ``x | z``,
    Eq. 3, with the labels); ``beta_k = mean_ij ds/dA_kij`` (Eq. 5) and the map is
    ``ReLU(sum_k beta_k A_k)`` (Eq. 6), upsampled and min-max normalised per image.

    Args:
        features: what ``x`` and ``z`` are. ``'layer'``: the activations at ``tap``,
            flattened (``x = A``; the paper, Sec. 3.1: "features of a specific layer").
            ``'pooled'``: the globally average-pooled final feature maps ``[N, C]`` (tap
            ``pre_pool``, else ``last_stage``), as the official code's ``PDC_Model`` with
            its default depth and Zhen et al.'s PDC-CAM, which it adapts.

    Notes: ``R*^2(x, g; z)`` and ``dCor^2(x | z, g)`` (the official code's score) differ
    only by a positive factor that does not depend on ``x``, so both give the same map.
    The batch needs ``N > 3`` images.
    """
    if features not in ('layer', 'pooled'):
        raise ValueError(f"Unknown UniCAM features '{features}'; use 'layer' or 'pooled'.")
    owner, given_owner = owners
    point, given_point = feature_point(model, tap, owner), feature_point(given, tap, given_owner)
    modes = model.training, given.training
    model.eval()
    given.eval()
    try:
        with torch.no_grad():
            if features == 'layer':
                z = _features(given, given_point, tap, inputs).flatten(1)
            else:
                z = _pooled_final(given, inputs, given_owner)[0]
        with torch.enable_grad():
            seen = inputs.detach().requires_grad_(True)
            if features == 'layer':
                act = _features(model, point, tap, seen)
                x = act.flatten(1)
            else:
                x, act = _pooled_final(model, seen, owner, tap, point)
            score = partial_distance_correlation_sqr(x, label_embeddings.to(x), z.to(x))
            grad, = torch.autograd.grad(score, act)
    finally:
        model.train(modes[0])
        given.train(modes[1])
    weights = grad.mean(dim=(2, 3), keepdim=True)
    maps = F.relu((weights * act.detach()).sum(dim=1))
    return normalise_maps(maps, inputs.shape[-2:])
