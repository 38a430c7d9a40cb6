"""The contract every registered distillation method keeps, parametrised over the registry
(a new method is tested without editing a list): built with its defaults inside a
Distiller on small classifiers, one loss step returns finite ``loss_<name>`` terms whose
gradients reach the student and the method's own parameters, never the teacher."""
import pytest
import torch

from kdbench.distill import registered_methods
from kdbench.distill.base import DistillMethod, TrainingProgress
from kdbench.registry import MODELS

# Methods whose defaults read dense maps: the options that put them on a classifier.
CLASSIFIER_OPTIONS = {'CWD': dict(taps=('last_stage',))}
# Methods that need more of the student (CAT-KD's CAMs: a bias-free classifier).
STUDENT_OPTIONS = {'CATKD': dict(classifier_bias=False)}


@pytest.mark.parametrize('method', [e.name for e in registered_methods()])
def test_registered_method_keeps_the_contract(method, tiny_classifier_cfg, teacher_ckpt):
    teacher = tiny_classifier_cfg('resnet14', 10)
    torch.manual_seed(0)
    distiller = MODELS.build(dict(
        type='Distiller', teacher=teacher,
        student=dict(tiny_classifier_cfg('resnet8', 10), **STUDENT_OPTIONS.get(method, {})),
        teacher_ckpt=teacher_ckpt(teacher, seed=1),
        methods={'m': dict(type=method, **CLASSIFIER_OPTIONS.get(method, {}))}))
    instance = distiller.methods['m']
    assert isinstance(instance, DistillMethod) and instance.progress is None
    instance.progress = TrainingProgress(epoch=1, iter=0, max_epochs=2, max_iters=4)
    distiller.train()
    inputs, labels = torch.randn(4, 3, 32, 32), torch.tensor([0, 3, 7, 9])
    losses = distiller(inputs, dict(label=labels), mode='loss')
    terms = {k: v for k, v in losses.items() if 'loss' in k and k != 'loss_cls'}
    assert terms and all(k.startswith('loss_m') for k in terms), losses.keys()
    assert all(v.dim() == 0 and torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in distiller.student.parameters())
    for name, param in instance.named_parameters():
        assert param.grad is not None, f'{method}: no gradient reaches {name}'
    assert all(p.grad is None for p in distiller.teacher.parameters())
