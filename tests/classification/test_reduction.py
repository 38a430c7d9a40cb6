"""Training-set reduction (CAT-KD Fig. 4 right) and accuracy on unseen classes."""
import numpy as np
import pytest
import torch

import tasks.classification  # noqa: F401
from kdbench.registry import DATASETS, METRICS


def test_reduction_keeps_first_classes_and_first_images_of_each():
    full = DATASETS.build(dict(type='DigitsDataset', split='train'))
    reduced = DATASETS.build(dict(type='ClassSubsetDataset', num_classes=4, fraction=0.3,
                                  dataset=dict(type='DigitsDataset', split='train')))
    counts = np.bincount(full.labels, minlength=10)
    assert len(reduced) == sum(int(counts[c] * 0.3) for c in range(4))
    assert set(reduced.labels.tolist()) == {0, 1, 2, 3}
    for c in range(4):
        first = np.flatnonzero(full.labels == c)[:int(counts[c] * 0.3)]
        assert np.array_equal(reduced.indices[reduced.labels == c], first)
    sample = reduced[5]
    assert torch.equal(sample['inputs'], full[int(reduced.indices[5])]['inputs'])
    assert reduced.metainfo['classes'] == full.metainfo['classes']


@pytest.mark.parametrize('num_classes, fraction', [(0, 0.5), (11, 0.5), (3, 0.0), (3, 1.5)])
def test_reduction_refuses_out_of_range(num_classes, fraction):
    with pytest.raises(ValueError, match='ClassSubsetDataset'):
        DATASETS.build(dict(type='ClassSubsetDataset', num_classes=num_classes,
                            fraction=fraction, dataset=dict(type='DigitsDataset')))


def test_topk_accuracy_on_a_subset_of_classes():
    metric = METRICS.build(dict(type='TopKAccuracy', topk=(1,), subsets=dict(unseen=[2, 3])))
    scores = torch.eye(4)                  # predicts class i for sample i
    labels = [0, 1, 3, 3]                  # right, right, wrong (pred 2), right
    metric.process({}, [dict(pred_score=s, gt_label=torch.tensor(label))
                        for s, label in zip(scores, labels)])
    result = metric.evaluate(4)
    assert result == {'accuracy/top1': 75.0, 'accuracy/unseen_top1': 50.0}
