"""Feature Similarity Score and Relevance Score per layer (Adhane et al., Sec. 3.2).

For one batch of ``n > 3`` images and one layer (tap):

* every model (``base``, ``student``, optionally ``teacher``) gets its saliency map for
  the ground-truth class (``--scoring paper``: Grad-CAM at the layer; ``code``: HiResCAM
  of the softmax score at its last stage, the same map for every layer; see
  :mod:`kdbench.explain.scoring`); its image is perturbed by that map (ROAD, keep the
  salient pixels, :mod:`kdbench.explain.perturb`) and its features at the layer
  ``x_m = f_m(I')`` flattened to ``[n, d]`` (Eq. 7, App. C);
* ``FSS = dCor^2(x_student, x_base)`` (Eq. 8); ``RS_m = dCor^2(x_m, g)`` with ``g`` the
  label embeddings of the batch's ground truth (Eq. 9);
* distilled / residual features: the student's image perturbed by UniCAM(student | base)
  and the base model's by UniCAM(base | student); their RS are ``rs_distilled`` and
  ``rs_residual`` (Table 1's "Residual / Distilled" columns).

Scores over several batches are summed and divided by the number of batches (Eq. 8-9:
``1/k sum_i``; :func:`kdbench.explain.scoring.score_batches`). Without the
perturbation (``keep=None``) the raw images are used and the unique-feature rows are
not defined. A segmentor's per-image class is the most frequent non-background class of its label
map (kdbench's extension: the paper covers classification only).
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from kdbench.distill.taps import Taps

from .functional import distance_correlation_sqr
from .maps import feature_point, grad_cam, unicam
from .perturb import road_keep_salient
from .scoring import LAST_TAP, SCORINGS, Scoring

#: Score keys in table order: (column header, meaning).
SCORE_COLUMNS = {
    'fss': ('FSS', 'dCor^2 of student and base features (1: the same sample geometry)'),
    'rs_base': ('RS base', 'dCor^2 of base features and label embeddings'),
    'rs_student': ('RS student', 'dCor^2 of student features and label embeddings'),
    'rs_teacher': ('RS teacher', 'dCor^2 of teacher features and label embeddings'),
    'rs_residual': ('RS residual', 'RS of the base model on the pixels its UniCAM '
                                   '(base given student) keeps'),
    'rs_distilled': ('RS distilled', 'RS of the student on the pixels its UniCAM '
                                     '(student given base) keeps'),
}


def tap_features(model: nn.Module, inputs: Tensor, tap: str, owner: str = 'model') -> Tensor:
    """Features ``[N, d]`` (flattened) of ``model`` at ``tap`` on ``inputs``, no gradient."""
    point = feature_point(model, tap, owner)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), Taps(model, {tap: point}) as taps:
            model(inputs)
            return taps[tap].flatten(1)
    finally:
        model.train(was_training)


def image_classes(labels: Tensor, num_classes: int, skip: Sequence[int] = ()) -> Tensor:
    """Class per image ``[N]``: the labels ``[N]`` themselves, or for label maps
    ``[N, H, W]`` the most frequent class in ``[0, num_classes)`` other than ``skip``
    (e.g. the background), falling back to the most frequent one."""
    if labels.dim() == 1:
        return labels.long()
    flat = labels.long().flatten(1)
    valid = (flat >= 0) & (flat < num_classes)
    counts = torch.zeros(flat.shape[0], num_classes + 1, dtype=torch.long)
    counts.scatter_add_(1, torch.where(valid, flat, num_classes), torch.ones_like(flat))
    counts = counts[:, :num_classes]
    kept = counts.clone()
    kept[:, list(skip)] = 0
    return torch.where(kept.sum(dim=1) > 0, kept.argmax(dim=1), counts.argmax(dim=1))


def explain_batch(models: Mapping[str, nn.Module], inputs: Tensor, classes: Tensor,
                  embeddings: Tensor, tap: str, method: str = 'gradcam',
                  keep: Optional[float] = 0.5, seed: int = 0,
                  scoring: Scoring = SCORINGS['paper']
                  ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
    """Scores and maps of one batch at one layer.

    Args:
        models: ``{'student': ..., 'base': ..., ['teacher': ...]}`` task models in eval
            mode, each declaring ``tap``.
        inputs: preprocessed images ``[n, 3, H, W]``, ``n > 3``.
        classes: ground-truth class per image ``[n]`` (target of the maps).
        embeddings: label embeddings of those classes ``[n, D]``.
        tap: the layer.
        method: Grad-CAM variant of the saliency maps (``'gradcam'``, ``'hirescam'``).
        keep: share of pixels kept by the perturbation, ``None`` for none.
        seed: seed of the perturbation's noise.
        scoring: which features UniCAM scores, at which layer the saliency maps are
            taken and with which target (:data:`kdbench.explain.scoring.SCORINGS`).

    Returns:
        ``({'fss', 'rs_<model>', ['rs_distilled', 'rs_residual']}: float)`` and maps
        ``[n, H, W]`` in ``[0, 1]``: one Grad-CAM per model plus ``'distilled'`` and
        ``'residual'`` (UniCAM).
    """
    student, base = models['student'], models['base']
    map_tap = tap if scoring.saliency_layer == 'own' else LAST_TAP
    softmax = scoring.cam_target == 'softmax'
    maps = {name: grad_cam(model, inputs, map_tap, classes, method, name, softmax)
            for name, model in models.items()}
    features = scoring.unicam_features
    maps['distilled'] = unicam(student, base, inputs, tap, embeddings, ('student', 'base'),
                               features)
    maps['residual'] = unicam(base, student, inputs, tap, embeddings, ('base', 'student'),
                              features)

    def features(name: str, model: nn.Module, saliency: Tensor) -> Tensor:
        seen = inputs if keep is None else road_keep_salient(inputs, saliency, keep, seed=seed)
        return tap_features(model, seen, tap, name)

    def relevance(x: Tensor) -> float:
        return float(distance_correlation_sqr(x, embeddings.to(x)))

    feats = {name: features(name, model, maps[name]) for name, model in models.items()}
    scores = {'fss': float(distance_correlation_sqr(feats['student'], feats['base']))}
    scores.update({f'rs_{name}': relevance(x) for name, x in feats.items()})
    if keep is not None:
        scores['rs_residual'] = relevance(features('base', base, maps['residual']))
        scores['rs_distilled'] = relevance(features('student', student, maps['distilled']))
    return scores, maps
