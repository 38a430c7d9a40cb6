"""Preflight: every missing input of a run listed in one short message, before the Runner."""
import os
import subprocess
import sys

import pytest
from shared_setup import ROOT

from kdbench.apis import PreflightError, load_config, missing_inputs, preflight

HEADLINE = os.path.join(ROOT, 'configs', 'seg', 'tat_deeplabv3p_r101_r18_voc.py')


def test_headline_config_on_a_fresh_clone_lists_every_missing_input_at_once(tmp_path):
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    done = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'train.py'), HEADLINE,
                           '--work-dir', str(work_dir)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT, NO_ALBUMENTATIONS_UPDATE='1'))
    assert done.returncode == 1
    message = done.stderr
    for line in ('model.teacher_ckpt: file not found: checkpoints/voc/deeplabv3p_r101.pth',
                 'model.student.encoder_ckpt: file not found: '
                 'checkpoints/resnet18-f37072fd.pth',
                 'train_dataloader.dataset.data_root: folder not found: data/VOCdevkit/VOC2012',
                 'val_dataloader.dataset.data_root: folder not found: data/VOCdevkit/VOC2012'):
        assert line in message, message
    assert '4 missing input(s)' in message and 'Traceback' not in message
    assert len(message.splitlines()) <= 8 and not done.stdout          # short, no dump
    assert not os.listdir(work_dir)                                     # no Runner was built


def test_split_files_urls_and_the_evaluated_checkpoint(tmp_path):
    from tests.segmentation.seg_data import write_voc
    write_voc(tmp_path, n=1)
    (tmp_path / 'ImageSets/Segmentation/val.txt').unlink()
    cfg = load_config(HEADLINE, {'data_root': str(tmp_path),
                                 'model.teacher_ckpt': 'https://example.org/teacher.pth',
                                 'model.student.encoder_ckpt': 'torchvision://resnet18'})
    split = os.path.join(str(tmp_path), 'ImageSets', 'Segmentation', 'val.txt')
    assert missing_inputs(cfg) == [
        f'val_dataloader.dataset (VOCAugDataset): split file not found: {split}']
    cfg.model.student.encoder_ckpt = 'missing/encoder.pth'   # evaluation never needs it
    assert missing_inputs(cfg, 'test', 'trained.pth') == [
        'CHECKPOINT: file not found: trained.pth',
        f'test_dataloader.dataset (VOCAugDataset): split file not found: {split}']
    with pytest.raises(PreflightError, match='3 missing input'):
        preflight(cfg, 'train', str(tmp_path / 'epoch_3.pth'))


def test_an_unwritable_work_dir_is_reported(tmp_path):
    (tmp_path / 'a_file').write_text('')          # a work dir under a file cannot be made
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py'),
                      work_dir=str(tmp_path / 'a_file' / 'run'))
    assert missing_inputs(cfg) == [
        f'work_dir: not writable: {tmp_path / "a_file" / "run"} (set --work-dir)']
    cfg.work_dir = str(tmp_path / 'new' / 'run')
    assert missing_inputs(cfg) == []


def test_pretrained_network_weights_given_as_a_path_are_checked():
    cfg = load_config(os.path.join(ROOT, 'configs', 'cls', 'tat_resnet34_resnet18_imagenet.py'))
    assert 'model.student.net.weights: file not found: checkpoints/resnet18-f37072fd.pth' in \
        missing_inputs(cfg)
    cfg.model.student.net.weights = 'IMAGENET1K_V1'           # a torchvision weights name
    assert not any('weights' in line for line in missing_inputs(cfg))


def test_home_relative_checkpoints_are_found_as_the_loaders_find_them(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    (tmp_path / 'teacher.pth').write_bytes(b'')
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'kd_resnet20_resnet8_digits.py'),
                      {'model.teacher_ckpt': '~/teacher.pth'}, str(tmp_path / 'run'))
    assert missing_inputs(cfg) == []
    cfg.model.teacher_ckpt = '~/other.pth'
    assert missing_inputs(cfg) == ['model.teacher_ckpt: file not found: ~/other.pth']


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs /proc (Linux)')
def test_a_work_dir_that_cannot_be_created_is_reported_before_the_runner(tmp_path):
    # /proc passes a permission check (as root) but nothing can be made in it.
    done = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'train.py'),
                           os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py'),
                           '--work-dir', '/proc/x'],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=ROOT, NO_ALBUMENTATIONS_UPDATE='1'))
    assert done.returncode == 1
    assert 'work_dir: not writable: /proc/x (set --work-dir)' in done.stderr
    assert 'Traceback' not in done.stderr and not done.stdout


def test_the_work_dir_check_leaves_nothing_behind(tmp_path):
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py'),
                      work_dir=str(tmp_path / 'new' / 'run'))
    assert missing_inputs(cfg) == []
    (tmp_path / 'run').mkdir()
    cfg.work_dir = str(tmp_path / 'run')
    assert missing_inputs(cfg) == []
    assert sorted(os.listdir(tmp_path)) == ['run'] and not os.listdir(tmp_path / 'run')


@pytest.mark.parametrize('config, how', [
    ('cls/kd_resnet32x4_resnet8x4_cifar100.py',
     'CIFAR100 (docs/data.md): python tools/prepare_cifar100.py --download'),
    ('cls/tat_resnet34_resnet18_imagenet.py', 'ImageFolderDataset (docs/data.md): the usual '
     'class-folder layout'),
    ('seg/tat_deeplabv3p_r101_r18_voc.py', 'VOCAugDataset (docs/data.md): python '
     'tools/prepare_voc_aug.py'),
    ('seg/kd_deeplabv3p_r101_r18_cocostuff10k.py', 'COCOStuff10kDataset (docs/data.md): '
     'extract cocostuff-10k-v1.1.zip'),
])
def test_missing_data_says_how_to_prepare_it(tmp_path, config, how):
    cfg = load_config(os.path.join(ROOT, 'configs', config),
                      {'data_root': str(tmp_path / 'data')}, str(tmp_path / 'work'))
    with pytest.raises(PreflightError) as absent:
        preflight(cfg)
    assert f'To prepare the data of {how}' in str(absent.value)
    assert str(absent.value).count('To prepare the data') == 1    # once, not per loader
    (tmp_path / 'data').mkdir()                  # an empty folder: its files are missing
    with pytest.raises(PreflightError) as empty:
        preflight(cfg)
    assert 'data_root: folder not found' not in str(empty.value)
    assert f'To prepare the data of {how}' in str(empty.value)
