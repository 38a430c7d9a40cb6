"""The two ways ``tools/explain.py`` scores FSS, RS and UniCAM (``--scoring paper|code``).

Adhane et al.'s paper and their official code (github.com/gadhane/UniCAM) differ in
three choices; :data:`SCORINGS` names both sets:

* ``'paper'`` (kdbench's default): UniCAM's score is the partial distance correlation of
  **the tapped layer's own features** (Sec. 3.1, "features of a specific layer"); FSS and
  RS at a layer are measured on each model's image perturbed by **that model's Grad-CAM at
  that layer** (the layer-specific features of Table 1; ``--cam`` picks Grad-CAM or
  HiResCAM); the batch scores are **averaged over near-equal batches** of about
  ``batch_size`` images (Eq. 8-9, ``1/k sum_i``).
* ``'code'`` (the official scripts): UniCAM scores the **globally average-pooled final
  features** of both models (``PDC_Model`` with its default feature depth 1: everything
  but the classifier), with the gradients still taken at the map's layer; FSS and RS
  at every layer are measured on each model's image perturbed by **one map per model,
  HiResCAM at its last stage** (``target_layers = [model.layer4]``) for the
  **softmax score** of the ground-truth class (``ClassifierOutputSoftmaxTarget``);
  batches are **consecutive chunks of exactly** ``batch_size`` images, a last chunk
  of 3 images or fewer is not scored but still counts in the divisor (the sum over
  batches is divided by the loader's length).

Both modes share the rest: bias-corrected dCor^2 for FSS and RS (the code's ``New_DC``),
ROAD least-relevant-first perturbation keeping ``keep`` of the pixels (the code's
percentile 50), each model's features measured on its own perturbed image.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from torch import Tensor

#: UniCAM score features: the tapped layer (flattened) or the pooled final features.
UNICAM_FEATURES = ('layer', 'pooled')
#: Saliency for FSS/RS: each layer's own map, or one map at the model's last stage.
SALIENCY_LAYERS = ('own', 'last')
#: Grad-CAM targets: the class logit or its softmax probability.
CAM_TARGETS = ('logit', 'softmax')
#: How images are grouped into batches (see :func:`score_batches`).
BATCHINGS = ('even', 'chunks')
#: The tap of the code mode's single saliency map.
LAST_TAP = 'last_stage'


@dataclass(frozen=True)
class Scoring:
    """One set of scoring choices (see the module doc).

    Args:
        unicam_features: ``'layer'`` or ``'pooled'`` (:data:`UNICAM_FEATURES`).
        saliency_layer: ``'own'`` or ``'last'`` (:data:`SALIENCY_LAYERS`).
        cam: default saliency method (``'gradcam'`` or ``'hirescam'``); ``--cam``
            overrides it.
        cam_target: ``'logit'`` or ``'softmax'`` (:data:`CAM_TARGETS`).
        batching: ``'even'`` or ``'chunks'`` (:data:`BATCHINGS`).
        description: one line for the reports.
    """
    unicam_features: str
    saliency_layer: str
    cam: str
    cam_target: str
    batching: str
    description: str


SCORINGS: Dict[str, Scoring] = {
    'paper': Scoring('layer', 'own', 'gradcam', 'logit', 'even',
                     "UniCAM on the layer's features; each layer's own saliency map; mean "
                     'over near-equal batches (paper, Sec. 3)'),
    'code': Scoring('pooled', 'last', 'hirescam', 'softmax', 'chunks',
                    'UniCAM on the pooled final features; one last-stage HiResCAM (softmax '
                    'target) per model for every layer; sum over full chunks / number of '
                    'chunks (official code)'),
}


def get_scoring(name: str) -> Scoring:
    """The scoring named ``name``; a clear error for unknown names."""
    if name not in SCORINGS:
        raise ValueError(f"Unknown scoring '{name}'; use one of {', '.join(SCORINGS)}.")
    return SCORINGS[name]


def score_batches(num_images: int, batch_size: int, batching: str
                  ) -> Tuple[List[Tensor], int]:
    """Image indices of the scored batches and the divisor of their sum.

    ``'even'``: ``max(1, num_images // batch_size)`` near-equal consecutive batches, all
    scored, divisor their number. ``'chunks'``: consecutive chunks of ``batch_size``
    images; chunks of 3 images or fewer (dCor needs more) are left out of the sum but
    counted in the divisor.
    """
    order = torch.arange(num_images)
    if batching == 'even':
        batches = list(order.tensor_split(max(1, num_images // batch_size)))
        return batches, len(batches)
    if batching == 'chunks':
        chunks = list(order.split(batch_size))
        return [c for c in chunks if len(c) > 3], len(chunks)
    raise ValueError(f"Unknown batching '{batching}'; use one of {', '.join(BATCHINGS)}.")
