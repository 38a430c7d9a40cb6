"""tools/check_dataset.py on folders with planted bad files: every bad file is named, the
exit status says whether problems were found, and nothing is written."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat
from shared_setup import ROOT

sys.path.insert(0, os.path.join(ROOT, 'tests', 'segmentation'))

from seg_data import coco_maps, palette_png, write_cocostuff, write_voc  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    'check_dataset', os.path.join(ROOT, 'tools', 'check_dataset.py'))
check_dataset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_dataset)

VOC_CONFIG = os.path.join('configs', 'seg', 'deeplabv3p_r18_voc.py')


def _voc_options(root):
    return ['--cfg-options'] + [f'{split}_dataloader.dataset.data_root={root}'
                                for split in ('train', 'val', 'test')]


def _plant_voc(root):
    """Six VOC samples, four of them broken in a different way; returns {id: file}."""
    labels = write_voc(root, n=6)
    (root / 'JPEGImages' / 'img_1.jpg').write_bytes(b'\xff\xd8\xff\xe0 truncated jpeg')
    palette_png(root / 'SegmentationClassAug' / 'img_2.png', np.zeros((10, 12), np.uint8))
    label = labels['img_3'].copy()
    label[5, 5] = 50
    palette_png(root / 'SegmentationClassAug' / 'img_3.png', label)
    (root / 'SegmentationClassAug' / 'img_4.png').unlink()
    return {'img_1': 'JPEGImages/img_1.jpg', 'img_2': 'SegmentationClassAug/img_2.png',
            'img_3': 'SegmentationClassAug/img_3.png', 'img_4': 'SegmentationClassAug/img_4.png'}


def test_cli_names_every_bad_voc_file(tmp_path):
    root = tmp_path / 'voc'
    bad = _plant_voc(root)
    before = sorted(p for p in tmp_path.rglob('*'))
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1')
    done = subprocess.run([sys.executable, 'tools/check_dataset.py', VOC_CONFIG, '--split', 'val',
                           '--workers', '2', *_voc_options(root)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert 'val: VOCAugDataset, 6 samples, 4 with problems' in out
    assert '(2 invalid, 1 missing, 1 unreadable)' in out
    for name, path in bad.items():
        assert f'#{name[-1]} {name}: ' in out and str(root / path) in out, name
    assert 'is 10x12 but its image' in out and 'values [50]' in out
    assert 'img_0' not in out and 'img_5' not in out
    assert '[val] 6/6 (100%) problems 4' in done.stderr
    assert sorted(p for p in tmp_path.rglob('*')) == before        # nothing written
    assert not os.path.exists(os.path.join(ROOT, 'work_dirs', 'deeplabv3p_r18_voc'))


def test_clean_voc_exits_0_and_test_split_is_not_checked_twice(tmp_path, capsys):
    write_voc(tmp_path / 'voc', n=3)
    assert check_dataset.main([VOC_CONFIG, *_voc_options(tmp_path / 'voc')]) == 0
    out = capsys.readouterr().out
    assert 'train: VOCAugDataset, 3 samples, 0 with problems' in out
    assert 'test: the same dataset as val, not checked again' in out
    assert 'No problems found.' in out


def test_max_errors_limits_the_listing(tmp_path, capsys):
    _plant_voc(tmp_path / 'voc')
    assert check_dataset.main([VOC_CONFIG, '--max-errors', '1',
                               *_voc_options(tmp_path / 'voc')]) == 1
    out = capsys.readouterr().out
    assert '8 problems, the first 1:' in out
    assert out.count('\n  [') == 1


def test_unbuildable_dataset_is_a_problem(tmp_path, capsys):
    assert check_dataset.main([VOC_CONFIG, '--split', 'train', '--cfg-options',
                               f'train_dataloader.dataset.data_root={tmp_path}/none']) == 1
    assert f"VOC data root '{tmp_path}/none' not found" in capsys.readouterr().out


def test_usage_errors_exit_2(tmp_path, capsys):
    assert check_dataset.main([str(tmp_path / 'absent.py')]) == 2
    with pytest.raises(SystemExit) as info:
        check_dataset.main([VOC_CONFIG, '--split', 'nope'])
    assert info.value.code == 2


def test_cocostuff_bad_mat_and_missing_image(tmp_path, capsys):
    root = tmp_path / 'coco'
    maps = coco_maps()
    write_cocostuff(root, maps)
    first, second = list(maps)
    savemat(root / 'annotations' / f'{first}.mat', dict(S=np.full((4, 4), 200, np.uint16)))
    os.remove(root / 'images' / f'{second}.jpg')
    config = os.path.join('configs', 'seg', 'at_deeplabv3p_r101_r18_cocostuff10k.py')
    code = check_dataset.main([config, '--split', 'train', '--cfg-options',
                               f'train_dataloader.dataset.data_root={root}'])
    out = capsys.readouterr().out
    assert code == 1
    assert f'annotations/{first}.mat' in out and f'images/{second}.jpg' in out


def test_image_folder_corrupt_image(tmp_path, capsys):
    for split in ('train', 'val'):
        for cls in ('a', 'b'):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / 'ok.png')
    (tmp_path / 'val' / 'b' / 'broken.jpg').write_bytes(b'not an image')
    config = os.path.join('configs', 'cls', 'resnet18_imagenet.py')
    options = ['--cfg-options'] + [f'{s}_dataloader.dataset.data_root={tmp_path}'
                                   for s in ('train', 'val', 'test')]
    code = check_dataset.main([config, *options])
    out = capsys.readouterr().out
    assert code == 1
    assert 'train: ImageFolderDataset, 2 samples, 0 with problems' in out
    assert 'val: ImageFolderDataset, 3 samples, 1 with problems (1 unreadable)' in out
    assert str(tmp_path / 'val' / 'b' / 'broken.jpg') in out


def test_in_memory_digits_pass(capsys):
    config = os.path.join('configs', 'demo', 'resnet8_digits.py')
    assert check_dataset.main([config, '--split', 'val']) == 0
    assert 'val: DigitsDataset, 450 samples, 0 with problems' in capsys.readouterr().out
