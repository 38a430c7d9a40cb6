"""ResumeCheckHook: --resume from another kind of run stops, naming both; --resume-any
(the hook told to warn) resumes anyway; load_from without resume is not checked."""
import os

import pytest
from shared_setup import ROOT

from kdbench.apis import load_config, train
from kdbench.hooks.resume_check import allow_any_resume, run_identity
from tests.hooks.test_teacher_metric import _digits_cfg


def _cfg(config, work_dir, teacher_ckpt, **options):
    """4 iterations on digits (checkpoint at 4), as the teacher-metric tests run them."""
    cfg = _digits_cfg(config, work_dir, teacher_ckpt, work_dir.parent / 'cache.json')
    cfg.merge_from_dict(options)
    return cfg


@pytest.fixture
def at_checkpoint(tmp_path, teacher_ckpt):
    teacher = teacher_ckpt(dict(type='ImageClassifier',
                                net=dict(type='resnet20', num_classes=10)))
    train(_cfg('at_resnet20_resnet8_digits.py', tmp_path / 'at', teacher))
    return teacher, str(tmp_path / 'at' / 'iter_4.pth')


def test_kd_config_resuming_an_at_checkpoint_is_refused_naming_both(tmp_path, at_checkpoint):
    teacher, checkpoint = at_checkpoint
    cfg = _cfg('kd_resnet20_resnet8_digits.py', tmp_path / 'kd', teacher,
               resume=True, load_from=checkpoint)
    with pytest.raises(ValueError, match=r"Refusing to resume.*\n  methods: checkpoint "
                                         r"'at=AT', this config 'kd=KD'\n.*--resume-any"):
        train(cfg)

    cfg = _cfg('kd_resnet20_resnet8_digits.py', tmp_path / 'any', teacher,
               resume=True, load_from=checkpoint)
    allow_any_resume(cfg)                                  # what --resume-any does
    assert train(cfg).iter == 4                            # resumed at the end: no error

    # Loading weights to start a new run (no resume) is not checked.
    train(_cfg('kd_resnet20_resnet8_digits.py', tmp_path / 'init', teacher,
               load_from=checkpoint))


def test_identity_names_task_model_and_dataset():
    cfg = load_config(os.path.join(ROOT, 'configs', 'seg', 'kd_deeplabv3p_r101_r18_voc.py'))
    assert run_identity(cfg) == {'model': 'Distiller', 'methods': 'kd=KD',
                                 'task model': 'DeepLabV3PlusSegmentor resnet18',
                                 'dataset': 'VOCAugDataset'}
