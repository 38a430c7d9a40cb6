"""--cfg-options that take effect: data_root reaches every dataloader of every dataset
family, parse-time variables are refused with the keys to use, unknown top-level keys warn
(or are refused with --strict-config)."""
import os
import subprocess
import sys

import pytest
from shared_setup import ROOT

from kdbench.apis import load_config
from kdbench.apis.overrides import UnknownConfigKeyWarning

LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
FAMILIES = {      # one config per dataset family (configs/_base_/datasets/*.py)
    'cifar100': 'configs/cls/kd_resnet32x4_resnet8x4_cifar100.py',
    'imagenet': 'configs/cls/kd_resnet34_resnet18_imagenet.py',
    'voc_aug': 'configs/seg/tat_deeplabv3p_r101_r18_voc.py',
    'cocostuff10k': 'configs/seg/kd_deeplabv3p_r101_r18_cocostuff10k.py',
}


def _load(config, options, **kwargs):
    return load_config(os.path.join(ROOT, config), options, **kwargs)


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_a_data_root_override_moves_every_dataloader(family, tmp_path):
    cfg = _load(FAMILIES[family], {'data_root': str(tmp_path)})
    for loader in LOADERS:
        assert cfg[loader].dataset.data_root == str(tmp_path), loader


def test_a_data_root_override_is_what_the_voc_dataset_reads(tmp_path):
    from mmengine.registry import DefaultScope

    from kdbench.registry import DATASETS
    from tests.segmentation.seg_data import write_voc
    write_voc(tmp_path, n=2)
    cfg = _load(FAMILIES['voc_aug'], {'data_root': str(tmp_path)})
    with DefaultScope.overwrite_default_scope('kdbench'):
        dataset = DATASETS.build(cfg.val_dataloader.dataset)
    assert dataset.image_path(0) == os.path.join(str(tmp_path), 'JPEGImages', 'img_0.jpg')


def test_an_explicit_loader_root_survives_a_data_root_override(tmp_path):
    cfg = _load(FAMILIES['cifar100'], {'data_root': str(tmp_path),
                                       'val_dataloader.dataset.data_root': '/elsewhere'})
    assert cfg.train_dataloader.dataset.data_root == str(tmp_path)
    assert cfg.val_dataloader.dataset.data_root == '/elsewhere'


def test_a_data_root_override_of_the_embedded_digits_is_refused():
    with pytest.raises(ValueError, match=r'data_root=/x changes nothing: no dataloader .*'
                                         r'kd_resnet20_resnet8_digits\.py reads a data_root'):
        _load('configs/demo/kd_resnet20_resnet8_digits.py', {'data_root': '/x'})


def test_a_parse_time_variable_is_refused_with_the_keys_to_set():
    with pytest.raises(ValueError, match=r"'crop_size' is a variable .* read when the file is "
                                         r'parsed.*train_dataloader\.dataset\.pipeline\.2\.'
                                         r'min_height, .*pipeline\.3\.width\.'):
        _load(FAMILIES['voc_aug'], {'crop_size': 256})


def test_unknown_top_level_keys_warn_and_strict_config_refuses():
    with pytest.warns(UnknownConfigKeyWarning, match="'totally_unknown', which nothing reads"):
        cfg = _load(FAMILIES['cifar100'], {'totally_unknown.key': 3})
    assert cfg.totally_unknown.key == 3
    with pytest.raises(ValueError, match="'totally_unknown'.*refused by --strict-config"):
        _load(FAMILIES['cifar100'], {'totally_unknown.key': 3}, strict=True)
    _load(FAMILIES['cifar100'], {'model.methods.kd.temperature': 2}, strict=True)


def test_train_py_strict_config_exits_with_the_message(tmp_path):
    done = subprocess.run(
        [sys.executable, 'tools/train.py', 'configs/demo/kd_resnet20_resnet8_digits.py',
         '--work-dir', str(tmp_path), '--strict-config', '--cfg-options', 'totally_unknown.key=3'],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=ROOT, NO_ALBUMENTATIONS_UPDATE='1'))
    assert done.returncode != 0
    assert "'totally_unknown', which nothing reads" in done.stderr
    assert not os.listdir(tmp_path)                     # stopped before the Runner
