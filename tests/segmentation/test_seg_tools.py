"""The README's segmentation commands, as users type them: tools/train.py on a shipped config
against a VOC-layout folder (small crops via --cfg-options), then tools/test.py printing
mIoU and the per-class table."""
import json
import os
import subprocess
import sys

import pytest
from seg_data import write_voc
from shared_setup import ROOT

import tasks.segmentation  # noqa: F401


def _run(*args, cwd):
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1', OMP_NUM_THREADS='2')
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _data_options(data_root, side):
    """--cfg-options pointing the loaders at ``data_root`` with ``side`` crops, no workers."""
    options = [f'train_dataloader.dataset.pipeline.{i}.{key}={side}'
               for i, key in ((1, 'base_size'), (2, 'min_height'), (2, 'min_width'),
                              (3, 'height'), (3, 'width'))]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.dataset.data_root={data_root}', f'{loader}.batch_size=2',
                    f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    return options


@pytest.mark.parametrize('config, side, loss', [
    ('kd_deeplabv3p_r101_r18_voc.py', 64, 'loss_kd'),
    ('tat_deeplabv3p_r101_r18_voc.py', 128, 'loss_tat'),      # 8x8 anchors at stride 16
])
def test_train_then_test_commands_on_a_voc_folder(tmp_path, teacher_ckpt, config, side, loss):
    write_voc(tmp_path / 'voc', n=4)
    teacher = teacher_ckpt(dict(type='DeepLabV3PlusSegmentor', encoder='resnet18',
                                num_classes=21))
    work_dir = tmp_path / 'work'
    config = os.path.join('configs', 'seg', config)
    out = _run('tools/train.py', config, '--work-dir', str(work_dir), '--cfg-options',
               'model.teacher.encoder=resnet18', f'model.teacher_ckpt={teacher}',
               'model.student.encoder_ckpt=None', 'train_cfg.max_epochs=1',
               'train_cfg.val_interval=1', 'default_hooks.logger.interval=1',
               *_data_options(tmp_path / 'voc', side), cwd=ROOT)
    assert loss in out and 'mIoU' in out
    checkpoint = work_dir / 'epoch_1.pth'
    assert checkpoint.is_file()

    # The config's ImageNet encoder file does not exist here: evaluating never needs it.
    out = _run('tools/test.py', config, str(checkpoint), '--work-dir', str(tmp_path / 'test'),
               '--cfg-options', *_data_options(tmp_path / 'voc', side), cwd=ROOT)
    assert 'per-class results' in out and 'aeroplane' in out and 'tvmonitor' in out
    metrics = json.loads(out[out.rindex('{'):out.rindex('}') + 1])
    assert set(metrics) == {'mIoU', 'mAcc', 'aAcc'} and 0 <= metrics['mIoU'] <= 100
