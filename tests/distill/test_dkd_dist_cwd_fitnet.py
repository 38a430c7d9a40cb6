"""Checks shared by DKD, DIST, CWD and FitNet, parametrised over them: gradients of the loss
functions reach the student only, the logit methods refuse other class counts, and each of
the four reads exactly one tap."""
import pytest
import torch
from method_helpers import build_method

from kdbench.distill.functional import cwd_loss, dist_loss, dkd_loss, hint_loss
from kdbench.distill.taps import TapPoint


def _dense_labels():
    return torch.tensor([[[0, 1], [2, 255]]])


@pytest.mark.parametrize('loss_fn, dense', [
    (lambda s, t: dkd_loss(s, t, torch.tensor([1, 0])), False),
    (lambda s, t: dkd_loss(s, t, _dense_labels(), ignore_index=255), True),
    (dist_loss, False), (dist_loss, True), (cwd_loss, True), (hint_loss, True)])
def test_gradients_reach_the_student_only(loss_fn, dense):
    torch.manual_seed(0)
    shape = (1, 3, 2, 2) if dense else (2, 3)
    student = torch.randn(shape, requires_grad=True)
    teacher = torch.randn(shape, requires_grad=True)
    loss_fn(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


@pytest.mark.parametrize('loss_fn', [
    lambda s, t: dkd_loss(s, t, torch.tensor([0, 1])), dist_loss])
def test_logit_losses_reject_other_class_counts(loss_fn):
    with pytest.raises(ValueError, match='same classes'):
        loss_fn(torch.randn(2, 3), torch.randn(2, 4))


@pytest.mark.parametrize('kind', ['DKD', 'DIST'])
def test_logit_methods_reject_other_class_counts(kind):
    with pytest.raises(ValueError, match=r"'logits' has 10 classes but the teacher's has 5"):
        build_method(kind).bind({'logits': TapPoint('fc', 10)}, {'logits': TapPoint('fc', 5)})


@pytest.mark.parametrize('kind', ['DKD', 'DIST', 'CWD', 'FitNet'])
def test_one_tap_only(kind):
    with pytest.raises(ValueError, match='exactly one'):
        build_method(kind, taps=('logits', 'last_stage'))
