"""A tiny segmentation distillation on 2 CPU processes (torchrun + gloo): it trains, and its
2-process evaluation equals the 1-process evaluation of the same checkpoint (5 images: the
sampler pads one)."""
import os
import sys

import pytest

from seg_data import write_voc
from test_seg_tools import _data_options
from shared_setup import ROOT

import tasks.segmentation  # noqa: F401
from kdbench.apis import evaluate, load_config

sys.path.insert(0, os.path.join(ROOT, 'tests'))
from test_distributed import cli_options, last_json, run_script  # noqa: E402

CONFIG = os.path.join(ROOT, 'configs', 'seg', 'kd_deeplabv3p_r101_r18_voc.py')


@pytest.mark.slow
def test_two_process_segmentation_distillation_and_exact_evaluation(tmp_path, teacher_ckpt):
    write_voc(tmp_path / 'voc', n=5)
    teacher = teacher_ckpt(dict(type='DeepLabV3PlusSegmentor', encoder='resnet18',
                                num_classes=21))
    data = _data_options(tmp_path / 'voc', 64)
    out = run_script('dist_train.sh', CONFIG, 2, '--work-dir', tmp_path / 'work',
                     '--cfg-options', 'model.teacher.encoder=resnet18',
                     f'model.teacher_ckpt={teacher}',
                     'model.student.encoder_ckpt=None', 'train_cfg.max_epochs=1',
                     'train_cfg.val_interval=1', 'default_hooks.logger.interval=1',
                     *data, port=29621)
    assert 'sync_bn is ignored on CPU processes' in out and 'loss_kd' in out
    checkpoint = tmp_path / 'work' / 'epoch_1.pth'

    two = last_json(run_script('dist_test.sh', CONFIG, checkpoint, 2, '--work-dir',
                               tmp_path / 'test2', '--cfg-options',
                               'model.student.encoder_ckpt=None', *data, port=29622))
    options = cli_options('model.student.encoder_ckpt=None', *data)
    cfg = load_config(CONFIG, options, str(tmp_path / 'test1'))
    one = evaluate(cfg, str(checkpoint))
    assert two == one and set(one) == {'mIoU', 'mAcc', 'aAcc'}
