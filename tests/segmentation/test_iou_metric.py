"""IoUMetric: accumulated confusion matrix, split-invariance, per-class log, class checks."""
import pytest
import torch

import tasks.segmentation  # noqa: F401  (registers the metric)
from tasks.segmentation import metrics
from kdbench.evaluation.functional import confusion_matrix, iou_from_confusion
from kdbench.registry import METRICS

CLASSES = ('background', 'cat', 'dog')


def _metric(**kwargs):
    metric = METRICS.build(dict(type='IoUMetric', **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    return metric


def _samples(seed, count=5, size=(6, 7)):
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(count):
        gt = torch.randint(0, 3, size, generator=gen)
        gt[0] = 255
        out.append(dict(pred_sem_seg=torch.randint(0, 3, size, generator=gen), gt_sem_seg=gt,
                        num_classes=3))
    return out


def test_metric_equals_the_confusion_matrix_of_all_pixels():
    samples = _samples(0)
    metric = _metric()
    metric.process(None, samples[:2])
    metric.process(None, samples[2:])
    result = metric.compute_metrics(metric.results)
    preds = torch.stack([s['pred_sem_seg'] for s in samples])
    gts = torch.stack([s['gt_sem_seg'] for s in samples])
    cm = confusion_matrix(preds, gts, 3)
    _, miou = iou_from_confusion(cm)
    assert list(result) == ['mIoU', 'mAcc', 'aAcc']
    assert result['mIoU'] == pytest.approx(100 * miou)
    assert result['aAcc'] == pytest.approx(100 * cm.trace().item() / cm.sum().item())
    recall = cm.diagonal().double() / cm.sum(1)
    assert result['mAcc'] == pytest.approx(100 * recall.mean().item())


def test_results_are_independent_of_how_samples_are_split_across_processes():
    # Two "ranks" each processing half: the concatenated results give the same figures.
    samples = _samples(1, count=6)
    whole, rank0, rank1 = _metric(), _metric(), _metric()
    whole.process(None, samples)
    rank0.process(None, samples[0::2])
    rank1.process(None, samples[1::2])
    assert whole.compute_metrics(whole.results) == \
        rank0.compute_metrics(rank0.results + rank1.results)


def test_per_class_table_is_logged(monkeypatch):
    logged = []
    monkeypatch.setattr(metrics, 'print_log', lambda msg, **kw: logged.append(msg))
    samples = _samples(2)
    metric = _metric()
    metric.process(None, samples)
    metric.compute_metrics(metric.results)
    text = '\n'.join(logged)
    cm = confusion_matrix(torch.stack([s['pred_sem_seg'] for s in samples]),
                          torch.stack([s['gt_sem_seg'] for s in samples]), 3)
    cat_line = next(line for line in text.splitlines() if line.startswith('cat '))
    assert f'{100 * iou_from_confusion(cm)[0][1].item():.2f}' in cat_line
    assert 'per-class results' in text and all(name in text for name in CLASSES)


def test_model_and_dataset_class_counts_must_agree():
    metric = _metric()
    sample = dict(_samples(3, count=1)[0], num_classes=21)
    with pytest.raises(ValueError, match='predicts 21 classes but the dataset has 3'):
        metric.process(None, [sample])
