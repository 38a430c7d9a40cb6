"""Cohorts (kdbench/apis/cohort.py, docs/cohorts.md): members trained in one pass over the
data with one teacher end bitwise equal to their runs alone (CPU, --deterministic)."""
import os
import subprocess
import sys

import pytest
import torch
from shared_setup import ROOT

import tasks.segmentation  # noqa: F401  (registers DeepLabV3PlusSegmentor for the teacher file)
from kdbench.apis import load_config, train
from kdbench.apis.cohort import Cohort
from kdbench.apis.cohort_check import check_cohort
from kdbench.apis.cohort_resume import auto_resume
from kdbench.apis.cohort_runner import CohortError
from kdbench.benchmark.compare import CHECKPOINT_KEYS, differences
from kdbench.hooks import NonFiniteLossError
from kdbench.testing import Shape, write_random_teacher
from kdbench.utils.checkpoint import load_local_checkpoint

DEMO = os.path.join(ROOT, 'configs', 'demo')
CLS_TEACHER = dict(type='ImageClassifier', net=dict(type='resnet20', num_classes=10))
SEG_TEACHER = dict(type='DeepLabV3PlusSegmentor', encoder='resnet34', num_classes=11,
                   output_stride=16, encoder_ckpt=None)
# 2 epochs, a checkpoint and a validation after each (best checkpoint chosen per member).
COMMON = {'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 1, 'log_level': 'WARNING',
          'default_hooks.checkpoint.interval': 1,
          'randomness': dict(seed=3, deterministic=True)}
# 60 images in 4 batches per epoch, 20 validation images; one worker: the random crops
# are drawn from per-(seed, epoch, rank, worker) streams, the same in every run.
CLS_OPTIONS = dict(COMMON, **{
    'train_dataloader.num_workers': 1, 'train_dataloader.batch_size': 16,
    'train_dataloader.dataset.fraction': 0.05,
    'val_dataloader.dataset': dict(_delete_=True, type='ClassSubsetDataset', num_classes=10,
                                   fraction=0.05,
                                   dataset=dict(type='DigitsDataset', split='test', size=16))})
# 1 batch of 8 scenes per epoch, 4 validation scenes; no workers (the scenes draw nothing).
SEG_OPTIONS = dict(COMMON, **{'train_dataloader.dataset.num_images': 8,
                              'val_dataloader.dataset.num_images': 4,
                              'validation.split': 'test'})     # all 8 scenes: one batch


def _config(folder, name, base, lines=''):
    """A config file ``folder/name.py`` inheriting ``base`` (a path), plus ``lines``."""
    path = os.path.join(folder, f'{name}.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = [{base!r}]\n{lines}')
    return path


def _configs(paths, root, options=CLS_OPTIONS, **extra):
    return [load_config(path, dict(options, **extra), os.path.join(root, _name(path)))
            for path in paths]


def _name(path):
    return os.path.splitext(os.path.basename(path))[0]


def _checkpoint(work_dir, name='epoch_2.pth'):
    return load_local_checkpoint(os.path.join(work_dir, name))


def _assert_same_run(alone, cohort, best=True):
    """Both work dirs hold the same final weights, method parameters, optimizer and
    scheduler states and generator states, and (``best``) the same best checkpoint."""
    a, b = _checkpoint(alone), _checkpoint(cohort)
    assert not differences(*[{key: c[key] for key in CHECKPOINT_KEYS} for c in (a, b)],
                           alone)
    if best:
        chosen = sorted(f for f in os.listdir(alone) if f.startswith('best_'))
        assert chosen and chosen == sorted(f for f in os.listdir(cohort)
                                           if f.startswith('best_'))


@pytest.fixture(scope='module')
def cls_runs(tmp_path_factory):
    """Baseline, KD, FitNet (trainable connector) and AT members on few-digits, trained
    alone and as one cohort, plus a member whose loss is NaN (cohort only)."""
    root = str(tmp_path_factory.mktemp('cls_cohort'))
    teacher = write_random_teacher(CLS_TEACHER, os.path.join(root, 'teacher.pth'), seed=1)
    use = f'model = dict(teacher_ckpt={teacher!r})\n'
    kd = os.path.join(DEMO, 'kd_resnet20_resnet8_fewdigits.py')
    paths = [os.path.join(DEMO, 'resnet8_fewdigits.py'),
             _config(root, 'kd', kd, use),
             _config(root, 'fitnet', kd, use + "model.update(methods=dict(kd=None, fitnet=dict("
                     "type='FitNet', loss_weight=100.0)))\n"),
             _config(root, 'at', os.path.join(DEMO, 'at_resnet20_resnet8_fewdigits.py'), use)]
    nan = _config(root, 'nan_kd', kd, use + "model.update(methods=dict(kd=dict(type='KD', "
                  "temperature=4.0, loss_weight=float('nan'))))\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('KDBENCH_CACHE_DIR', os.path.join(root, 'cache'))
        for cfg in _configs(paths, os.path.join(root, 'alone')):
            train(cfg)
        cohort = Cohort(_configs(paths[:2] + [nan] + paths[2:], os.path.join(root, 'cohort')))
        members = cohort.train()
        distillers = [m.runner.model for m in members if m.ok and m.name != 'resnet8_fewdigits']
        shared = all(d.teacher is cohort.teacher.teacher for d in distillers)
        resumed = Cohort(_configs(paths, os.path.join(root, 'resumed'), resume=True))
        for member in resumed.members:         # as after a kill in epoch 2
            member.cfg.load_from = os.path.join(root, 'cohort', member.name, 'epoch_1.pth')
        resumed_members = resumed.train()
    return dict(root=root, names=[_name(p) for p in paths], members=members,
                forwards=cohort.teacher.forwards, shared=shared, distillers=len(distillers),
                resumed=resumed_members)


def test_cls_cohort_members_equal_their_runs_alone(cls_runs):
    root = cls_runs['root']
    for name in cls_runs['names']:
        _assert_same_run(os.path.join(root, 'alone', name), os.path.join(root, 'cohort', name))
    fitnet = _checkpoint(os.path.join(root, 'cohort', 'fitnet'))['state_dict']
    assert any(key.startswith('methods.fitnet.') for key in fitnet)     # the connector
    baseline = _checkpoint(os.path.join(root, 'cohort', 'resnet8_fewdigits'))['state_dict']
    kd = _checkpoint(os.path.join(root, 'cohort', 'kd'))['state_dict']
    assert not torch.equal(baseline['net.fc.weight'], kd['student.net.fc.weight'])


def test_cls_cohort_runs_one_shared_teacher_once_per_batch(cls_runs):
    assert cls_runs['distillers'] == 3 and cls_runs['shared']
    assert cls_runs['forwards'] == 2 * 4           # 2 epochs of 4 batches


def test_a_failing_member_is_reported_while_the_others_train(cls_runs):
    failed = [m for m in cls_runs['members'] if not m.ok]
    assert [m.name for m in failed] == ['nan_kd']
    assert isinstance(failed[0].error, NonFiniteLossError)
    assert not os.path.exists(os.path.join(cls_runs['root'], 'cohort', 'nan_kd', 'epoch_1.pth'))


def test_a_resumed_cohort_ends_as_the_runs_alone(cls_runs):
    root = cls_runs['root']
    assert all(m.ok for m in cls_runs['resumed'])
    for name in cls_runs['names']:
        assert not os.path.exists(os.path.join(root, 'resumed', name, 'epoch_1.pth'))
        _assert_same_run(os.path.join(root, 'alone', name), os.path.join(root, 'resumed', name),
                         best=False)    # the best checkpoint of epoch 1 is in the first dir


def test_seg_cohort_with_dropout_and_a_connector_equals_runs_alone(tmp_path, monkeypatch):
    """DeepLabV3+ students (dropout in the ASPP head, drawn from each member's own stream),
    one with FitNet's trainable connector; the loader has no workers, so each member draws
    its loader iterator's seed from its own stream, as alone."""
    monkeypatch.setenv('KDBENCH_CACHE_DIR', str(tmp_path / 'cache'))
    teacher = write_random_teacher(SEG_TEACHER, str(tmp_path / 'teacher.pth'), seed=1,
                                   calibration=Shape(8, 64))
    paths = [os.path.join(DEMO, 'seg', 'deeplabv3p_r18_digitseg.py'),
             _config(str(tmp_path), 'fitnet', os.path.join(DEMO, 'seg', 'kd_deeplabv3p_r34_r18_'
                                                           'digitseg.py'),
                     f"model = dict(teacher_ckpt={teacher!r}, methods=dict(kd=None, fitnet="
                     "dict(type='FitNet', loss_weight=1.0, taps=('last_stage',))))\n")]
    for cfg in _configs(paths, str(tmp_path / 'alone'), SEG_OPTIONS):
        train(cfg)
    members = Cohort(_configs(paths, str(tmp_path / 'cohort'), SEG_OPTIONS)).train()
    assert all(m.ok for m in members)
    for path in paths:
        _assert_same_run(str(tmp_path / 'alone' / _name(path)),
                         str(tmp_path / 'cohort' / _name(path)))


def _two_members(tmp_path, **second):
    kd = os.path.join(DEMO, 'kd_resnet20_resnet8_fewdigits.py')
    at = os.path.join(DEMO, 'at_resnet20_resnet8_fewdigits.py')
    first = load_config(kd, CLS_OPTIONS, str(tmp_path / 'kd'))
    return [first, load_config(at, dict(CLS_OPTIONS, **second), str(tmp_path / 'at'))]


@pytest.mark.parametrize('option, key', [
    ({'train_dataloader.batch_size': 32}, 'train_dataloader.batch_size'),
    ({'train_cfg.max_epochs': 3}, 'train_cfg.max_epochs'),
    ({'randomness': dict(seed=4, deterministic=True)}, 'randomness.seed'),
    ({'model.teacher_ckpt': 'other.pth'}, 'model.teacher_ckpt'),
    ({'train_dataloader.dataset.fraction': 0.2}, 'train_dataloader.dataset.fraction'),
    ({'train_dataloader.num_workers': 2}, 'train_dataloader.num_workers'),
    ({'validation': dict(split='holdout', size=20)}, 'validation.size'),
    ({'validation': dict(split='test')}, 'validation.split')])
def test_members_differing_in_a_shared_key_are_refused(tmp_path, option, key):
    with pytest.raises(CohortError, match=f'differ in {key}: kd_resnet20.* has .*at_resnet20'):
        check_cohort(_two_members(tmp_path, **option))


def test_cohorts_without_a_fixed_seed_or_with_duplicate_work_dirs_are_refused(tmp_path):
    cfgs = _two_members(tmp_path)
    for cfg in cfgs:
        cfg.randomness = dict(seed=None)
    with pytest.raises(CohortError, match='randomness.seed is not set'):
        check_cohort(cfgs)
    cfgs = _two_members(tmp_path)
    cfgs[1].work_dir = cfgs[0].work_dir
    with pytest.raises(CohortError, match='distinct work dirs'):
        check_cohort(cfgs)


def test_a_loader_drawing_in_the_training_process_is_refused(tmp_path, teacher_ckpt,
                                                             monkeypatch):
    """The demo's RandomCrop without workers draws from the members' own streams: their
    runs alone see different crops, so they cannot share batches."""
    monkeypatch.setenv('KDBENCH_CACHE_DIR', str(tmp_path / 'cache'))
    cfgs = _two_members(tmp_path)
    for cfg in cfgs:
        cfg.train_dataloader.num_workers = 0
        cfg.model.teacher_ckpt = teacher_ckpt(CLS_TEACHER)
    with pytest.raises(CohortError, match='train_dataloader.num_workers>=1'):
        Cohort(cfgs).train()


def test_train_cohort_tool_refuses_differing_members_with_exit_status_1(tmp_path,
                                                                        teacher_ckpt):
    ckpt = teacher_ckpt(CLS_TEACHER)
    command = [sys.executable, 'tools/train_cohort.py',
               os.path.join(DEMO, 'kd_resnet20_resnet8_fewdigits.py'),
               os.path.join(DEMO, 'at_resnet20_resnet8_digits.py'),
               '--work-dir-root', str(tmp_path), '--cfg-options', f'model.teacher_ckpt={ckpt}']
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1'))
    assert done.returncode == 1, done.stderr[-2000:]
    assert 'differ in train_dataloader' in done.stderr


def _distiller(student, teacher, ckpt, methods=None):
    from kdbench.registry import MODELS
    return MODELS.build(dict(type='Distiller', student=student, teacher=teacher,
                             teacher_ckpt=ckpt, methods=methods or dict(kd=dict(type='KD'))))


def test_shared_teacher_runs_once_per_batch_and_refuses_another_teacher(
        tiny_classifier_cfg, teacher_ckpt):
    from kdbench.distill.shared_teacher import SharedTeacher
    teacher = tiny_classifier_cfg('resnet20')
    ckpt = teacher_ckpt(teacher)
    first = _distiller(tiny_classifier_cfg(), teacher, ckpt)
    second = _distiller(tiny_classifier_cfg(), teacher, ckpt,
                        dict(at=dict(type='AT', taps=('last_stage',))))
    alone = second.teacher_forward(torch.randn(2, 3, 16, 16))
    shared = SharedTeacher(first)
    shared.add(second, 'second')
    assert second.teacher is first.teacher
    inputs = torch.randn(2, 3, 16, 16)
    logits = first.teacher_forward(inputs)
    features = second.teacher_forward(inputs.clone())
    assert shared.forwards == 1 and features.keys() == alone.keys()
    direct = second.run_teacher(inputs, second.teacher_points)
    assert torch.equal(features['last_stage'], direct['last_stage'])
    logits['logits'].mul_(2)                    # a method writing into a teacher tensor
    with pytest.raises(RuntimeError, match='modified in place'):
        second.teacher_forward(inputs)
    other = _distiller(tiny_classifier_cfg(), teacher, teacher_ckpt(teacher, 'other.pth', 1))
    with pytest.raises(ValueError, match="other: model.teacher_ckpt is .*other.pth"):
        shared.add(other, 'other')


def _stopped_at(cfg, *epochs, latest=None, final_metrics=True):
    """``cfg``'s work dir holding (empty) checkpoints of ``epochs``, the last one named by
    ``last_checkpoint`` (or ``latest``), and ``final_metrics.json`` (what a finished run
    writes last) when ``final_metrics``."""
    os.makedirs(cfg.work_dir, exist_ok=True)
    if final_metrics:
        open(os.path.join(cfg.work_dir, 'final_metrics.json'), 'w').close()
    for epoch in epochs:
        open(os.path.join(cfg.work_dir, f'epoch_{epoch}.pth'), 'w').close()
    name = latest or (epochs and f'epoch_{epochs[-1]}.pth')
    if name:
        with open(os.path.join(cfg.work_dir, 'last_checkpoint'), 'w') as f:
            f.write(os.path.join(cfg.work_dir, name))
    return cfg


def _three_members(tmp_path):
    kd = os.path.join(DEMO, 'kd_resnet20_resnet8_fewdigits.py')
    return [load_config(kd, dict(CLS_OPTIONS, **{'train_cfg.max_epochs': 3}),
                        str(tmp_path / name)) for name in ('a', 'b', 'c')]


def test_resume_auto_leaves_out_finished_members_and_starts_together(tmp_path):
    a, b, c = _three_members(tmp_path)
    training, finished = auto_resume([_stopped_at(a, 2, 3), _stopped_at(b, 1, 2),
                                      _stopped_at(c, 1)])
    assert finished == [a] and training == [b, c]
    assert not a.get('resume')
    # b was one epoch ahead (stopped while the members wrote their checkpoints)
    assert b.resume and b.load_from == os.path.join(b.work_dir, 'epoch_1.pth')
    assert c.resume and c.load_from == os.path.join(c.work_dir, 'epoch_1.pth')


def test_resume_auto_starts_every_member_anew_when_one_has_no_checkpoint(tmp_path):
    a, b, c = _three_members(tmp_path)
    training, finished = auto_resume([_stopped_at(a, 1), b, _stopped_at(c, 3)])
    assert training == [a, b] and finished == [c]
    assert not a.get('resume') and a.load_from is None and not b.get('resume')


def test_resume_auto_ends_the_run_of_a_member_stopped_before_its_final_metrics(tmp_path):
    a, b, _ = _three_members(tmp_path)      # stopped during their last validation
    training, finished = auto_resume([_stopped_at(a, 2, 3, final_metrics=False),
                                      _stopped_at(b, 3, final_metrics=False)])
    assert training == [a, b] and not finished
    assert a.load_from == os.path.join(a.work_dir, 'epoch_3.pth')


def test_resume_auto_refuses_a_missing_common_epoch_or_iteration_checkpoints(tmp_path):
    a, b, _ = _three_members(tmp_path)
    _stopped_at(a, 2)                  # epoch_1.pth removed (max_keep_ckpts)
    with pytest.raises(CohortError, match=r"fewdigits: --resume auto: the members stopped at "
                       r"different epochs \(.*/a: epoch 2, .*/b: epoch 1\) and .*/a/epoch_1.pth "
                       'is gone'):
        auto_resume([a, _stopped_at(b, 1)])
    with pytest.raises(CohortError, match='--resume auto continues epoch checkpoints .*'
                       '/b/last_checkpoint names .*iter_40.pth'):
        auto_resume([a, _stopped_at(b, latest='iter_40.pth')])


def test_train_cohort_resume_auto_skips_finished_members_and_exits_0(tmp_path):
    a, b, _ = _three_members(tmp_path)
    paths = []
    for cfg in (_stopped_at(a, 2, 3), _stopped_at(b, 3)):
        paths.append(str(tmp_path / f'{os.path.basename(cfg.work_dir)}.py'))
        cfg.dump(paths[-1])
    done = subprocess.run([sys.executable, 'tools/train_cohort.py', *paths, '--resume', 'auto'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1'))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [f'a: finished, skipped ({a.work_dir})',
                                        f'b: finished, skipped ({b.work_dir})']
