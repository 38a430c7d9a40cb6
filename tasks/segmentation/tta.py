"""Test-time augmentation for segmentation: multi-scale + horizontal flip, averaged softmax
(the standard protocol, e.g. mmseg's ``aug_test``; DeepLab's evaluation on VOC uses
scales 0.5..1.75 and flips)."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def tta_probabilities(logits_fn: Callable[[Tensor], Tensor], inputs: Tensor,
                      scales: Sequence[float] = DEFAULT_SCALES, flip: bool = True) -> Tensor:
    """Mean class probabilities over resized (and flipped) copies of the batch.

    Each copy is ``inputs`` resized bilinearly to ``round(s * H) x round(s * W)``
    (``logits_fn`` pads it to its size divisor and crops back), its logits resized back
    to ``H x W``, softmaxed, flipped back for the mirrored copy; the result is the mean.

    Args:
        logits_fn: ``[N, 3, h, w]`` -> ``[N, K, h, w]`` for any h, w.
        inputs: normalised float ``[N, 3, H, W]``.
        scales: resize factors (1.0 is the plain image).
        flip: also run every scale mirrored left-right.

    Returns:
        ``[N, K, H, W]`` float32 probabilities.
    """
    if not scales or min(scales) <= 0:
        raise ValueError(f'TTA scales must be positive and not empty, got {list(scales)}.')
    height, width = inputs.shape[-2:]
    total, count = None, 0
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = inputs if size == (height, width) else F.interpolate(
            inputs, size=size, mode='bilinear', align_corners=False)
        for mirror in ((False, True) if flip else (False,)):
            logits = logits_fn(scaled.flip(-1) if mirror else scaled)
            logits = logits.flip(-1) if mirror else logits
            if logits.shape[-2:] != (height, width):
                logits = F.interpolate(logits, size=(height, width), mode='bilinear',
                                       align_corners=False)
            probs = torch.softmax(logits.float(), dim=1)
            total = probs if total is None else total + probs
            count += 1
    return total / count
