"""Top-k accuracy (kdbench.evaluation.functional)."""
import pytest
import torch

from kdbench.evaluation.functional import (confusion_matrix, iou_from_confusion,
                                           topk_accuracy, topk_correct)

# 4 samples, 3 classes; rank of the label among the scores:
#   s0 label 1: scores (.1, .7, .2) -> rank 1
#   s1 label 2: scores (.5, .3, .2) -> rank 3
#   s2 label 1: scores (.2, .3, .5) -> rank 2
#   s3 label 0: scores (.6, .1, .3) -> rank 1
LOGITS = torch.tensor([[0.1, 0.7, 0.2],
                       [0.5, 0.3, 0.2],
                       [0.2, 0.3, 0.5],
                       [0.6, 0.1, 0.3]])
TARGET = torch.tensor([1, 2, 1, 0])


def test_topk_correct_per_sample():
    correct = topk_correct(LOGITS, TARGET, topk=(1, 2, 3))
    assert correct.dtype == torch.bool and correct.shape == (4, 3)
    assert correct.tolist() == [[True, True, True],
                                [False, False, True],
                                [False, True, True],
                                [True, True, True]]


def test_topk_accuracy_hand_computed():
    # top-1: s0, s3 -> 2/4; top-2: + s2 -> 3/4; top-3: all.
    assert topk_accuracy(LOGITS, TARGET, topk=(1, 2, 3)) == pytest.approx([50.0, 75.0, 100.0])
    # The order of topk is kept.
    assert topk_accuracy(LOGITS, TARGET, topk=(2, 1)) == pytest.approx([75.0, 50.0])


def test_k_above_the_class_count_counts_every_sample():
    assert topk_accuracy(LOGITS, TARGET) == pytest.approx([50.0, 100.0])     # default (1, 5)
    assert topk_accuracy(LOGITS, TARGET, topk=(10,)) == pytest.approx([100.0])
    assert topk_correct(LOGITS, TARGET, topk=(4,)).all()


def test_all_wrong_and_all_right():
    target = LOGITS.argmax(1)
    assert topk_accuracy(LOGITS, target, topk=(1,)) == pytest.approx([100.0])
    worst = LOGITS.argmin(1)
    assert topk_accuracy(LOGITS, worst, topk=(1, 2)) == pytest.approx([0.0, 0.0])


@pytest.mark.parametrize('logits_shape, target_shape', [
    ((4, 3), (3,)),
    ((4, 3), (4, 1)),
    ((4,), (4,)),
    ((4, 3, 2), (4,)),
])
def test_shape_mismatch_raises_value_error(logits_shape, target_shape):
    with pytest.raises(ValueError) as info:
        topk_accuracy(torch.randn(*logits_shape), torch.zeros(target_shape, dtype=torch.long))
    assert str(logits_shape) in str(info.value) and str(target_shape) in str(info.value)


# ----------------------------------------------------------------------------- segmentation

def test_confusion_matrix_hand_computed_rows_are_ground_truth():
    target = torch.tensor([[0, 0, 1], [2, 255, 1]])
    pred = torch.tensor([[0, 1, 1], [2, 0, 0]])
    # counted pixels (gt, pred): (0,0) (0,1) (1,1) (2,2) (1,0); the 255 pixel is skipped.
    assert confusion_matrix(pred, target, 3).tolist() == [[1, 1, 0],
                                                          [1, 1, 0],
                                                          [0, 0, 1]]
    assert confusion_matrix(pred, target, 3).dtype == torch.int64


def test_confusion_matrix_skips_targets_outside_the_classes_and_checks_predictions():
    target = torch.tensor([0, 5, 1])
    assert confusion_matrix(torch.tensor([0, 0, 1]), target, 2).sum() == 2
    with pytest.raises(ValueError, match=r'predicted class 3 is outside \[0, 2\)'):
        confusion_matrix(torch.tensor([0, 0, 3]), target, 2)
    with pytest.raises(ValueError, match='same shape'):
        confusion_matrix(torch.zeros(2, 3), torch.zeros(3, 2), 2)


def test_iou_from_confusion_hand_computed_with_absent_class():
    # class 0: hits 3, gt 4, pred 3 -> 3 / 4; class 1: hits 1, gt 1, pred 2 -> 1 / 2;
    # class 2: absent from ground truth and prediction -> NaN, left out of the mean.
    cm = torch.tensor([[3, 1, 0], [0, 1, 0], [0, 0, 0]])
    iou, miou = iou_from_confusion(cm)
    assert iou[:2].tolist() == pytest.approx([0.75, 0.5])
    assert torch.isnan(iou[2])
    assert miou == pytest.approx(0.625)
    # A class predicted but never in the ground truth counts with IoU 0.
    iou, miou = iou_from_confusion(torch.tensor([[2, 1], [0, 0]]))
    assert iou.tolist() == pytest.approx([2 / 3, 0.0]) and miou == pytest.approx(1 / 3)


def test_iou_from_confusion_rejects_non_square():
    with pytest.raises(ValueError, match=r'\[K, K\]'):
        iou_from_confusion(torch.zeros(2, 3))


def test_confusion_matrix_and_iou_equal_direct_per_class_counts_on_random_maps():
    gen = torch.Generator().manual_seed(0)
    k = 5
    target = torch.randint(0, k, (3, 17, 23), generator=gen)
    target[torch.rand(target.shape, generator=gen) < 0.2] = 255
    pred = torch.randint(0, k, target.shape, generator=gen)
    cm = confusion_matrix(pred, target, k)
    valid = target != 255
    for i in range(k):
        for j in range(k):
            assert cm[i, j] == ((target == i) & (pred == j) & valid).sum()
    iou, miou = iou_from_confusion(cm)
    expected = []
    for c in range(k):
        inter = ((pred == c) & (target == c) & valid).sum().item()
        union = (((pred == c) | (target == c)) & valid).sum().item()
        expected.append(inter / union)
    assert iou.tolist() == pytest.approx(expected)
    assert miou == pytest.approx(sum(expected) / k)
