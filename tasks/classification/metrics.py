"""Top-k accuracy, exact under multi-process evaluation."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric

from kdbench.data_contract import KDTestMetric
from kdbench.evaluation.functional import topk_correct
from kdbench.registry import METRICS


@METRICS.register_module()
class TopKAccuracy(KDTestMetric, BaseMetric):
    """Top-k accuracy in percent (``accuracy/top1``, ``accuracy/top5``).

    Results are kept per sample, so mmengine's cross-process collection (which drops the
    samples a distributed sampler padded) gives exactly the single-process figure.

    Args:
        topk: the k values.
        subsets: extra figures on subsets of classes, e.g. ``dict(unseen=[50, ..., 99])``
            adds ``accuracy/unseen_top1`` (CAT-KD's classes never seen in training).
    """

    default_prefix = 'accuracy'
    sample_writer = 'ClsSampleWriter'     # per-sample outputs of tools/test.py --out/--show-dir

    def __init__(self, topk: Sequence[int] = (1, 5),
                 subsets: Optional[Mapping[str, Sequence[int]]] = None, **kwargs):
        super().__init__(**kwargs)
        self.topk = tuple(topk)
        self.subsets = {name: list(classes) for name, classes in (subsets or {}).items()}

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        scores = torch.stack([s['pred_score'] for s in data_samples]).float().cpu()
        labels = torch.stack([torch.as_tensor(s['gt_label']) for s in data_samples]).cpu()
        self.results.extend(zip(topk_correct(scores, labels, self.topk), labels))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        correct = torch.stack([c for c, _ in results]).float()
        labels = torch.stack([label for _, label in results])
        metrics = self._summary(correct, '')
        for name, classes in self.subsets.items():
            chosen = torch.isin(labels, torch.as_tensor(classes))
            if chosen.any():
                metrics.update(self._summary(correct[chosen], f'{name}_'))
        return metrics

    def _summary(self, correct: torch.Tensor, prefix: str) -> Dict[str, float]:
        return {f'{prefix}top{k}': value.item()
                for k, value in zip(self.topk, correct.mean(0) * 100)}
