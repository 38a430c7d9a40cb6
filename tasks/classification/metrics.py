"""Top-k accuracy, exact under multi-process evaluation."""
from __future__ import annotations

from typing import Dict, List, Sequence

import torch
from mmengine.evaluator import BaseMetric

from kdbench.evaluation.functional import topk_correct
from kdbench.registry import METRICS


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """Top-k accuracy in percent (``accuracy/top1``, ``accuracy/top5``).

    Results are kept per sample, so mmengine's cross-process collection (which drops the
    samples a distributed sampler padded) gives exactly the single-process figure.
    """

    default_prefix = 'accuracy'

    def __init__(self, topk: Sequence[int] = (1, 5), **kwargs):
        super().__init__(**kwargs)
        self.topk = tuple(topk)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        scores = torch.stack([s['pred_score'] for s in data_samples]).float().cpu()
        labels = torch.stack([torch.as_tensor(s['gt_label']) for s in data_samples]).cpu()
        self.results.extend(topk_correct(scores, labels, self.topk))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        correct = torch.stack(results).float().mean(0) * 100
        return {f'top{k}': value.item() for k, value in zip(self.topk, correct)}
