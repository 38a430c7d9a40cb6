"""tools/prepare_voc_aug.py on tiny releases written in the official formats: VOC 2012
(folder or tar) and SBD (benchmark_RELEASE/dataset/{cls/*.mat with GTcls.Segmentation,
train.txt, val.txt}, folder or tgz, or torchvision's flattened download)."""
import os
import runpy
import sys
import tarfile

import numpy as np
import pytest
import torchvision.datasets
from PIL import Image
from scipy.io import savemat
from seg_data import palette_png
from shared_setup import ROOT

from kdbench.registry import DATASETS
from tasks.segmentation import datasets as seg_datasets  # noqa: F401  (registers)
from tasks.segmentation.prepare import download_voc_aug, prepare_voc_aug, train_aug_ids

VOC_SPLITS = dict(train=['a', 'b'], val=['c', 'd'])
SBD_SPLITS = dict(train=['a', 'c', 'e'], val=['f', 'g'])
TRAIN_AUG = ['a', 'b', 'e', 'f', 'g']          # VOC train + SBD train/val - VOC val


def _label(seed, h=12, w=16, border=True):
    label = np.random.default_rng(seed).integers(0, 21, (h, w)).astype(np.uint8)
    if border:
        label[0] = 255                              # VOC's void border (SBD has none)
    return label


def write_releases(root):
    """Returns (VOC2012 folder, benchmark_RELEASE folder, {id: expected label})."""
    voc = root / 'VOCdevkit' / 'VOC2012'
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        os.makedirs(voc / sub)
    sbd = root / 'benchmark_RELEASE' / 'dataset'
    os.makedirs(sbd / 'cls')
    os.makedirs(sbd / 'img')
    expected = {}
    for i, name in enumerate('abcdefg'):
        image = np.random.default_rng(i).integers(0, 256, (12, 16, 3), dtype=np.uint8)
        Image.fromarray(image).save(voc / 'JPEGImages' / f'{name}.jpg')
        Image.fromarray(image).save(sbd / 'img' / f'{name}.jpg')
        if any(name in ids for ids in SBD_SPLITS.values()):
            sbd_label = _label(100 + i, border=False)
            savemat(sbd / 'cls' / f'{name}.mat', dict(GTcls=dict(
                Segmentation=sbd_label, Boundaries=np.zeros((21, 1), dtype=object),
                CategoriesPresent=np.unique(sbd_label[sbd_label > 0]).astype(np.uint8))))
            expected[name] = sbd_label
        if any(name in ids for ids in VOC_SPLITS.values()):
            expected[name] = _label(i)                 # VOC's own label wins
            palette_png(voc / 'SegmentationClass' / f'{name}.png', expected[name])
    for split, ids in VOC_SPLITS.items():
        (voc / 'ImageSets/Segmentation' / f'{split}.txt').write_text(''.join(
            f'{i}\n' for i in ids))
    for split, ids in SBD_SPLITS.items():
        (sbd / f'{split}.txt').write_text(''.join(f'{i}\n' for i in ids))
    return voc, sbd.parent, expected


def check_output(voc, expected):
    split = voc / 'ImageSets' / 'Segmentation' / 'train_aug.txt'
    assert split.read_text().split() == TRAIN_AUG
    for name in TRAIN_AUG + VOC_SPLITS['val']:
        png = Image.open(voc / 'SegmentationClassAug' / f'{name}.png')
        assert png.mode == 'P' and png.getpalette()[:6] == [0, 0, 0, 128, 0, 0]
        assert np.array_equal(np.asarray(png), expected[name]), name
    ds = DATASETS.build(dict(type='VOCAugDataset', data_root=str(voc), split='train_aug'))
    assert ds.ids == TRAIN_AUG
    for i, name in enumerate(TRAIN_AUG):
        assert np.array_equal(ds[i]['data_samples']['label'].numpy(), expected[name])


def test_train_aug_ids_is_the_standard_union():
    assert train_aug_ids(VOC_SPLITS['train'], VOC_SPLITS['val'], SBD_SPLITS['train'],
                         SBD_SPLITS['val']) == TRAIN_AUG


def test_from_extracted_folders(tmp_path):
    voc, sbd, expected = write_releases(tmp_path)
    lines = []
    counts = prepare_voc_aug(str(voc.parent), str(sbd), str(tmp_path), expected=5,
                             log=lines.append)
    assert counts == dict(train_aug=5, val=2, from_voc=4, from_sbd=3)
    assert 'train_aug: 5 ids' in lines[-1]
    check_output(voc, expected)


def test_from_the_archives(tmp_path):
    voc, sbd, expected = write_releases(tmp_path / 'src')
    with tarfile.open(tmp_path / 'VOCtrainval_11-May-2012.tar', 'w') as tar:
        tar.add(voc.parent, arcname='VOCdevkit')
    with tarfile.open(tmp_path / 'benchmark.tgz', 'w:gz') as tar:
        tar.add(sbd, arcname='benchmark_RELEASE')
    out = tmp_path / 'data'
    prepare_voc_aug(str(tmp_path / 'VOCtrainval_11-May-2012.tar'),
                    str(tmp_path / 'benchmark.tgz'), str(out), expected=None)
    check_output(out / 'VOCdevkit' / 'VOC2012', expected)
    assert not (out / 'benchmark_RELEASE' / 'dataset' / 'img').exists()     # only cls + lists


def test_torchvisions_flattened_sbd_download(tmp_path):
    voc, sbd, expected = write_releases(tmp_path)
    os.rename(sbd / 'dataset', tmp_path / 'SBD')                 # cls/, train.txt at the root
    prepare_voc_aug(str(voc), str(tmp_path / 'SBD'), str(tmp_path), expected=5)
    check_output(voc, expected)


def test_errors_name_the_problem(tmp_path):
    voc, sbd, _ = write_releases(tmp_path)
    with pytest.raises(ValueError, match=r'train_aug has 5 ids, expected 10582 \(VOC train 2, '
                                         r'VOC val 2, SBD train 3, SBD val 2\)'):
        prepare_voc_aug(str(voc), str(sbd), str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"No SBD folder \(with cls/"):
        prepare_voc_aug(str(voc), str(tmp_path / 'nowhere'), str(tmp_path))
    with pytest.raises(FileNotFoundError, match='No VOC2012 folder'):
        prepare_voc_aug(str(tmp_path / 'nowhere'), str(sbd), str(tmp_path))
    savemat(sbd / 'dataset' / 'cls' / 'e.mat', dict(GT=np.zeros((2, 2))))
    with pytest.raises(ValueError, match=r"Cannot read SBD label '.*e.mat' .*GTcls"):
        prepare_voc_aug(str(voc), str(sbd), str(tmp_path), expected=None)
    os.remove(sbd / 'dataset' / 'cls' / 'e.mat')
    with pytest.raises(FileNotFoundError, match=r"SBD label '.*e.mat' not found"):
        prepare_voc_aug(str(voc), str(sbd), str(tmp_path), expected=None)
    os.remove(voc / 'JPEGImages' / 'g.jpg')
    with pytest.raises(FileNotFoundError, match=r"1 images missing from .*JPEGImages', "
                                                r"e.g. \['g'\]"):
        prepare_voc_aug(str(voc), str(sbd), str(tmp_path), expected=None)


def test_download_uses_torchvisions_classes(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(torchvision.datasets, 'VOCSegmentation',
                        lambda *a, **k: calls.append(('voc', a, k)))
    monkeypatch.setattr(torchvision.datasets, 'SBDataset',
                        lambda *a, **k: calls.append(('sbd', a, k)))
    paths = download_voc_aug(str(tmp_path))
    assert calls == [('voc', (str(tmp_path),), dict(year='2012', image_set='trainval',
                                                    download=True)),
                     ('sbd', (str(tmp_path / 'SBD'),), dict(image_set='train',
                                                            mode='segmentation',
                                                            download=True))]
    assert paths == dict(voc=str(tmp_path / 'VOCdevkit' / 'VOC2012'),
                         sbd=str(tmp_path / 'SBD'))


def test_script(tmp_path, monkeypatch, capsys):
    voc, sbd, expected = write_releases(tmp_path)
    argv = [os.path.join(ROOT, 'tools', 'prepare_voc_aug.py'), '--voc', str(voc), '--sbd',
            str(sbd), '--out-root', str(tmp_path)]
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit, match='prepare_voc_aug: train_aug has 5 ids, expected 10582'):
        runpy.run_path(argv[0], run_name='__main__')
    monkeypatch.setattr(sys, 'argv', argv + ['--expect', '5'])
    runpy.run_path(argv[0], run_name='__main__')
    assert 'train_aug: 5 ids' in capsys.readouterr().out
    check_output(voc, expected)
