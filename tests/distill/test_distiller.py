"""The Distiller with tiny CIFAR ResNets: frozen teacher, losses, checkpoints, errors."""
import re

import pytest
import torch
from torch import nn

from kdbench.distill import Distiller
from kdbench.distill.functional import at_loss, kd_loss
from kdbench.registry import MODELS
from kdbench.utils.weights import load_task_weights

KD_AT = dict(kd=dict(type='KD'), at=dict(type='AT'))


@pytest.fixture
def batch():
    torch.manual_seed(123)
    return torch.randn(4, 3, 16, 16), dict(label=torch.tensor([0, 3, 7, 9]))


@pytest.fixture
def make_distiller(tiny_classifier_cfg, teacher_ckpt):
    """``make_distiller(teacher_arch='resnet14', methods=KD_AT, seed=0, **kwargs)`` returns
    ``(distiller, ckpt_path)``; the teacher checkpoint is written with seed 1000."""
    def make(teacher_arch='resnet14', teacher_classes=10, methods=None, seed=0,
             ckpt=None, student=None, **kwargs):
        teacher = tiny_classifier_cfg(teacher_arch, teacher_classes)
        if ckpt is None:
            ckpt = teacher_ckpt(teacher, name=f'{teacher_arch}_{teacher_classes}.pth',
                                seed=1000)
        torch.manual_seed(seed)
        distiller = MODELS.build(dict(
            type='Distiller', student=student or tiny_classifier_cfg('resnet8', 10),
            teacher=teacher, teacher_ckpt=ckpt,
            methods=KD_AT if methods is None else methods, **kwargs))
        return distiller, ckpt
    return make


def _ckpt_state(path):
    return torch.load(path, map_location='cpu', weights_only=False)['state_dict']


def _assert_state_equal(module, state):
    current = module.state_dict()
    assert set(current) == set(state)
    for key, value in state.items():
        assert torch.equal(current[key], value), key


# ----------------------------------------------------------------------------- frozen teacher

def test_build_gives_frozen_teacher_loaded_from_checkpoint(make_distiller):
    distiller, ckpt = make_distiller()
    assert isinstance(distiller, Distiller)
    assert all(not p.requires_grad for p in distiller.teacher.parameters())
    assert all(p.requires_grad for p in distiller.student.parameters())
    _assert_state_equal(distiller.teacher, _ckpt_state(ckpt))
    assert not distiller.teacher.training


def test_train_keeps_teacher_and_its_bn_in_eval_mode(make_distiller):
    distiller, _ = make_distiller()
    distiller.train()
    assert distiller.training and distiller.student.training
    assert all(m.training for m in distiller.student.modules())
    assert not distiller.teacher.training
    bns = [m for m in distiller.teacher.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and not any(m.training for m in bns)
    distiller.eval()
    assert not distiller.student.training and not distiller.teacher.training
    distiller.train(True)
    assert distiller.student.training and not distiller.teacher.training


def test_loss_step_trains_the_student_only(make_distiller, batch):
    distiller, ckpt = make_distiller()
    distiller.train()
    inputs, data_samples = batch
    student_before = {k: v.clone() for k, v in distiller.student.state_dict().items()}
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.1, momentum=0.9,
                                weight_decay=1e-2)
    losses = distiller(inputs, data_samples, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_kd', 'loss_at'}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert losses['loss_kd'].item() > 0 and losses['loss_at'].item() > 0
    sum(losses.values()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in distiller.student.parameters())
    assert all(p.grad is None for p in distiller.teacher.parameters())
    optimizer.step()
    # The teacher (weights and BN running statistics) is exactly the checkpoint's ...
    _assert_state_equal(distiller.teacher, _ckpt_state(ckpt))
    # ... while the student's weights and BN statistics moved.
    after = distiller.student.state_dict()
    assert not torch.equal(after['net.conv1.weight'], student_before['net.conv1.weight'])
    assert not torch.equal(after['net.bn1.running_mean'], student_before['net.bn1.running_mean'])


def test_each_distillation_loss_sends_gradients_to_the_student(make_distiller, batch):
    distiller, _ = make_distiller()
    distiller.train()
    losses = distiller(*batch, mode='loss')
    for key in ('loss_kd', 'loss_at'):
        distiller.zero_grad()
        losses[key].backward(retain_graph=True)
        grad = distiller.student.net.conv1.weight.grad
        assert grad is not None and grad.abs().sum() > 0, key


def test_loss_values_match_the_functional_losses(make_distiller, batch):
    distiller, _ = make_distiller(
        methods=dict(kd=dict(type='KD', temperature=2.0, loss_weight=0.7),
                     at=dict(type='AT', loss_weight=50.0, taps=('stage2', 'stage3'))))
    distiller.eval()           # BN with running statistics: the same outputs twice
    inputs, data_samples = batch
    losses = distiller(inputs, data_samples, mode='loss')

    def run(model):
        feats = {}
        hooks = [getattr(model.net, name).register_forward_hook(
            lambda m, a, out, name=name: feats.__setitem__(name, out))
            for name in ('layer2', 'layer3')]
        logits = model(inputs)
        for hook in hooks:
            hook.remove()
        return logits, feats

    with torch.no_grad():
        s_logits, s_feats = run(distiller.student)
        t_logits, t_feats = run(distiller.teacher)
    ce = nn.functional.cross_entropy(s_logits, data_samples['label'])
    assert losses['loss_cls'].item() == pytest.approx(ce.item(), rel=1e-5)
    assert losses['loss_kd'].item() == pytest.approx(
        0.7 * kd_loss(s_logits, t_logits, 2.0).item(), rel=1e-5)
    expected_at = 50.0 * (at_loss(s_feats['layer2'], t_feats['layer2']) +
                          at_loss(s_feats['layer3'], t_feats['layer3']))
    assert losses['loss_at'].item() == pytest.approx(expected_at.item(), rel=1e-5)


def test_student_loss_weight_scales_only_the_task_loss(make_distiller, batch):
    full, ckpt = make_distiller(seed=0, student_loss_weight=1.0)
    scaled, _ = make_distiller(seed=0, student_loss_weight=0.1, ckpt=ckpt)
    _assert_state_equal(scaled.student, full.student.state_dict())
    full.eval()
    scaled.eval()
    a, b = full(*batch, mode='loss'), scaled(*batch, mode='loss')
    assert a['loss_cls'].item() > 0
    assert b['loss_cls'].item() == pytest.approx(0.1 * a['loss_cls'].item(), rel=1e-5)
    assert b['loss_kd'].item() == pytest.approx(a['loss_kd'].item(), rel=1e-6)
    assert b['loss_at'].item() == pytest.approx(a['loss_at'].item(), rel=1e-6)


def test_init_weights_leaves_the_teacher_alone(make_distiller):
    distiller, ckpt = make_distiller()
    distiller.init_weights()
    _assert_state_equal(distiller.teacher, _ckpt_state(ckpt))


def test_teacher_runs_only_in_loss_mode(make_distiller, batch):
    distiller, _ = make_distiller()
    calls, student_grad = [], []
    distiller.teacher.register_forward_hook(lambda *args: calls.append(torch.is_grad_enabled()))
    distiller.student.register_forward_hook(
        lambda *args: student_grad.append(torch.is_grad_enabled()))
    distiller(*batch, mode='loss')
    assert calls == [False]            # the teacher runs under no_grad, once
    assert student_grad == [True]
    distiller(batch[0], mode='tensor')
    distiller(*batch, mode='predict')
    assert len(calls) == 1


def test_tap_points_are_public_and_read_only(make_distiller):
    distiller, _ = make_distiller()
    taps = {'logits', 'last_stage'}                     # KD's and AT's
    assert set(distiller.student_points) == set(distiller.teacher_points) == taps
    assert distiller.student_points == {t: distiller.student.tap_points[t] for t in taps}
    assert distiller.teacher_points == {t: distiller.teacher.tap_points[t] for t in taps}
    with pytest.raises(TypeError):
        distiller.student_points['logits'] = distiller.teacher_points['logits']


def test_build_without_teacher_weights_refuses_to_train(make_distiller, batch, tmp_path):
    never_read = str(tmp_path / 'not_written_yet.pth')
    distiller, _ = make_distiller(ckpt=never_read, load_teacher=False)
    assert distiller.teacher_ckpt == never_read and not distiller.teacher.training
    assert set(distiller.teacher_points) == {'logits', 'last_stage'}
    for step in (lambda: distiller(*batch, mode='loss'),
                 lambda: distiller.teacher_forward(batch[0]),
                 lambda: distiller.teacher_predict(dict(inputs=batch[0],
                                                        data_samples=batch[1]))):
        with pytest.raises(RuntimeError, match='load_teacher=False') as info:
            step()
        assert never_read in str(info.value)
    assert distiller(batch[0], mode='tensor').shape == (4, 10)    # the student still runs


# ----------------------------------------------------------------------------- checkpoints

def test_state_dict_holds_the_student_not_the_teacher(make_distiller):
    distiller, _ = make_distiller()
    keys = list(distiller.state_dict())
    assert not any(k.startswith('teacher.') for k in keys)
    assert any(k.startswith('student.') for k in keys)
    assert {k[len('student.'):] for k in keys if k.startswith('student.')} == \
        set(distiller.student.state_dict())
    # The teacher is still a registered submodule (it moves with .to()/.cuda()).
    assert any(name == 'teacher' for name, _ in distiller.named_children())


def test_state_dict_loads_back_strictly(make_distiller, batch):
    distiller, ckpt = make_distiller(seed=0)
    distiller.train()
    distiller(*batch, mode='loss')              # BN statistics of the student move
    state = distiller.state_dict()
    fresh, _ = make_distiller(seed=1, ckpt=ckpt)
    assert not torch.equal(fresh.student.net.conv1.weight, distiller.student.net.conv1.weight)
    result = fresh.load_state_dict(state, strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    _assert_state_equal(fresh.student, distiller.student.state_dict())
    _assert_state_equal(fresh.teacher, _ckpt_state(ckpt))


def test_strict_load_still_reports_missing_student_keys(make_distiller):
    distiller, _ = make_distiller()
    state = distiller.state_dict()
    del state['student.net.fc.weight']
    with pytest.raises(RuntimeError, match=r'student\.net\.fc\.weight'):
        distiller.load_state_dict(state, strict=True)
    result = distiller.load_state_dict(state, strict=False)
    assert result.missing_keys == ['student.net.fc.weight']


def test_distiller_checkpoint_loads_into_the_plain_student(make_distiller, batch,
                                                           tiny_classifier_cfg, tmp_path):
    distiller, _ = make_distiller(seed=0)
    distiller.train()
    distiller(*batch, mode='loss')
    path = tmp_path / 'distilled.pth'
    torch.save({'state_dict': distiller.state_dict(), 'meta': dict(epoch=1)}, path)
    torch.manual_seed(99)
    student = MODELS.build(tiny_classifier_cfg('resnet8', 10))
    load_task_weights(student, str(path), owner='student')
    _assert_state_equal(student, distiller.student.state_dict())
    student.eval()
    distiller.eval()
    with torch.no_grad():
        assert torch.equal(student(batch[0]), distiller(batch[0], mode='tensor'))


# ----------------------------------------------------------------------------- errors

def test_missing_teacher_checkpoint(make_distiller, tmp_path):
    path = str(tmp_path / 'no_such_teacher.pth')
    with pytest.raises(FileNotFoundError, match=re.escape(path)):
        make_distiller(ckpt=path)


@pytest.mark.parametrize('ckpt_arch, ckpt_classes, teacher_arch, teacher_classes, problem', [
    ('resnet8', 10, 'resnet14', 10, 'missing keys'),
    ('resnet14', 10, 'resnet8', 10, 'unexpected keys'),
    ('resnet14', 5, 'resnet14', 10, r'shape mismatch: net\.fc\.weight'),
])
def test_teacher_checkpoint_of_another_model(make_distiller, tiny_classifier_cfg, teacher_ckpt,
                                             ckpt_arch, ckpt_classes, teacher_arch,
                                             teacher_classes, problem):
    path = teacher_ckpt(tiny_classifier_cfg(ckpt_arch, ckpt_classes), name='other.pth')
    with pytest.raises(RuntimeError, match=problem) as info:
        make_distiller(teacher_arch=teacher_arch, teacher_classes=teacher_classes, ckpt=path,
                       methods=dict(at=dict(type='AT')))
    assert path in str(info.value)


def test_unknown_method_type(make_distiller):
    with pytest.raises(KeyError, match='NoSuchMethod'):
        make_distiller(methods=dict(x=dict(type='NoSuchMethod')))


def test_unknown_tap_lists_available_taps(make_distiller):
    with pytest.raises(KeyError) as info:
        make_distiller(methods=dict(at=dict(type='AT', taps=('nope',))))
    message = str(info.value)
    assert "'nope'" in message and 'student' in message
    assert 'Available taps:' in message and 'last_stage' in message and 'logits' in message


@pytest.mark.parametrize('methods', [dict(), dict(kd=None, at=None)])
def test_no_method_raises(make_distiller, methods):
    with pytest.raises(ValueError, match='no distillation method'):
        make_distiller(methods=methods)


def test_none_entry_removes_a_method(make_distiller, batch):
    distiller, _ = make_distiller(methods=dict(kd=None, at=dict(type='AT')))
    assert list(distiller.methods) == ['at']
    assert set(distiller(*batch, mode='loss')) == {'loss_cls', 'loss_at'}


def test_loss_keys_follow_the_method_names(make_distiller, batch):
    distiller, _ = make_distiller(methods=dict(
        kd_t4=dict(type='KD'), kd_t1=dict(type='KD', temperature=1.0)))
    losses = distiller(*batch, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_kd_t4', 'loss_kd_t1'}
    assert losses['loss_kd_t4'].item() != pytest.approx(losses['loss_kd_t1'].item())


def test_kd_with_different_class_counts_raises(make_distiller):
    with pytest.raises(ValueError, match='10 classes.*5'):
        make_distiller(teacher_classes=5, methods=dict(kd=dict(type='KD')))


def test_at_alone_accepts_different_class_counts(make_distiller, batch):
    distiller, _ = make_distiller(teacher_classes=5, methods=dict(at=dict(type='AT')))
    assert set(distiller(*batch, mode='loss')) == {'loss_cls', 'loss_at'}


# ----------------------------------------------------------------------------- inference modes

def test_predict_and_tensor_modes_run_the_student(make_distiller, batch, tiny_classifier_cfg):
    distiller, _ = make_distiller()
    distiller.eval()
    inputs, data_samples = batch
    plain = MODELS.build(tiny_classifier_cfg('resnet8', 10))
    plain.load_state_dict(distiller.student.state_dict())
    plain.eval()
    with torch.no_grad():
        expected = plain(inputs)
        logits = distiller(inputs, mode='tensor')
        preds = distiller(inputs, data_samples, mode='predict')
    assert logits.shape == (4, 10)
    assert torch.equal(logits, expected)
    assert isinstance(preds, list) and len(preds) == 4
    for i, pred in enumerate(preds):
        assert set(pred) >= {'pred_score', 'gt_label'}
        assert pred['pred_score'].shape == (10,)
        assert torch.equal(pred['pred_score'], expected[i])
        assert int(pred['gt_label']) == int(data_samples['label'][i])


def test_teacher_checkpoint_path_may_start_with_tilde(make_distiller, tiny_classifier_cfg,
                                                      teacher_ckpt, tmp_path, monkeypatch):
    path = teacher_ckpt(tiny_classifier_cfg('resnet14', 10), name='home_teacher.pth')
    monkeypatch.setenv('HOME', str(tmp_path))
    distiller, _ = make_distiller(ckpt='~/home_teacher.pth')
    _assert_state_equal(distiller.teacher, _ckpt_state(path))
