"""The tap table every classification network declares."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from kdbench.distill.taps import TapPoint


def gap_linear_taps(stages: Sequence[TapPoint], pre_pool: TapPoint, num_classes: int,
                    stem: Optional[TapPoint] = None, pool: str = 'avgpool',
                    fc: str = 'fc', hint: Optional[TapPoint] = None) -> Dict[str, TapPoint]:
    """Taps of a network ending in global average pooling and a linear classifier.

    Args:
        stages: the backbone stage outputs, in order (``stage1``, ``stage2``, ...);
            the last one is also ``last_stage``.
        pre_pool: the final post-activation feature map that ``pool`` averages (CAMs are
            computed on it; often the last stage itself).
        num_classes: classifier outputs.
        stem: the stem output, if any.
        pool: path of the global pooling module (``pre_logits`` = its output
            ``[N, C, 1, 1]``).
        fc: path of the linear classifier (``logits`` = its output ``[N, K]``;
            ``classifier`` = its weight ``[K, C]``).
        hint: FitNet's hint/guided layer (``hint``), MDistiller's feature index 2: the
            second stage after the stem; defaults to ``stages[1]``.
    """
    points = {f'stage{i}': point for i, point in enumerate(stages, 1)}
    if stem is not None:
        points['stem'] = stem
    points.update(last_stage=stages[-1], pre_pool=pre_pool, hint=hint or stages[1],
                  pre_logits=TapPoint(pool, pre_pool.channels),
                  logits=TapPoint(fc, num_classes),
                  classifier=TapPoint(fc, num_classes, param='weight'))
    return points
