"""The TopKAccuracy metric as mmengine's evaluator uses it."""
import pytest
import torch

import tasks.classification  # noqa: F401  (registers TopKAccuracy)
from kdbench.registry import METRICS

# 5 samples, 6 classes. Rank of the true class (1 = highest score):
#   sample 0: 1, sample 1: 2, sample 2: 5, sample 3: 6, sample 4: 1
SCORES = torch.tensor([
    [0.9, 0.05, 0.02, 0.01, 0.01, 0.01],     # label 0, rank 1
    [0.1, 0.5, 0.3, 0.05, 0.03, 0.02],       # label 2, rank 2
    [6.0, 5.0, 4.0, 3.0, 2.0, 1.0],          # label 4, rank 5
    [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0],    # label 5, rank 6
    [0.0, 0.0, 0.0, 9.0, 0.0, 1.0],          # label 3, rank 1
])
LABELS = [0, 2, 4, 5, 3]


def _samples(indices):
    return [dict(pred_score=SCORES[i], gt_label=torch.tensor(LABELS[i])) for i in indices]


def test_top1_top5_by_hand():
    metric = METRICS.build(dict(type='TopKAccuracy', topk=(1, 5)))
    metric.process(None, _samples([0, 1, 2]))
    metric.process(None, _samples([3, 4]))
    result = metric.evaluate(5)
    assert set(result) == {'accuracy/top1', 'accuracy/top5'}
    assert result['accuracy/top1'] == pytest.approx(100 * 2 / 5)     # samples 0, 4
    assert result['accuracy/top5'] == pytest.approx(100 * 4 / 5)     # all but sample 3
    assert metric.results == []                                     # reset for next epoch


def test_other_k_and_int_labels():
    metric = METRICS.build(dict(type='TopKAccuracy', topk=(2, 6)))
    metric.process(None, [dict(pred_score=SCORES[i], gt_label=LABELS[i]) for i in range(5)])
    result = metric.evaluate(5)
    assert result == pytest.approx({'accuracy/top2': 60.0, 'accuracy/top6': 100.0})


def test_padded_samples_are_dropped_by_size():
    # A distributed sampler pads the last batch; evaluate(size) counts the first `size`.
    metric = METRICS.build(dict(type='TopKAccuracy', topk=(1, 5)))
    metric.process(None, _samples([0, 1, 2, 3, 4]))
    result = metric.evaluate(3)
    assert result['accuracy/top1'] == pytest.approx(100 / 3)
    assert result['accuracy/top5'] == pytest.approx(100.0)


def test_k_above_classes_counts_every_sample():
    metric = METRICS.build(dict(type='TopKAccuracy', topk=(1, 10)))
    metric.process(None, _samples(range(5)))
    assert metric.evaluate(5)['accuracy/top10'] == pytest.approx(100.0)
