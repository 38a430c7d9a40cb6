"""mmseg's converted layouts read as they are: VOC aug (trainaug.txt / aug.txt split names,
SBD-only SegmentationClassAug with VOC's own labels in SegmentationClass) and
COCO-Stuff-10k (images|annotations/{train2014,test2014}, *_labelTrainIds.png with ids
0..171)."""
import os

import numpy as np
import pytest
from PIL import Image
from seg_data import coco_maps, palette_png, voc_label, write_cocostuff, write_voc

from kdbench.registry import DATASETS
from tasks.segmentation import datasets as seg_datasets  # noqa: F401  (registers)

UNUSED_1BASED = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91}
# mmseg's converter table: raw id -> train id, 0 kept, the used ids numbered 1..171 in order
MMSEG_TRAIN_ID = {0: 0, **{raw: k for k, raw in enumerate(
    [i for i in range(1, 183) if i not in UNUSED_1BASED], start=1)}}


def _build(type_, root, **kwargs):
    return DATASETS.build(dict(type=type_, data_root=str(root), **kwargs))


def write_mmseg_voc(root):
    """img_0 and img_1 from VOC train (img_1 not in SBD), img_2 and img_3 SBD-only."""
    labels = write_voc(root, n=4, label_dir='SegmentationClass')
    os.makedirs(root / 'SegmentationClassAug')
    for name in ('img_0', 'img_2', 'img_3'):
        os.replace(root / 'SegmentationClass' / f'{name}.png',
                   root / 'SegmentationClassAug' / f'{name}.png')
    palette_png(root / 'SegmentationClass' / 'img_0.png', voc_label(50))   # VOC's own label
    splits = root / 'ImageSets' / 'Segmentation'
    os.remove(splits / 'train_aug.txt')
    (splits / 'trainaug.txt').write_text('img_0\nimg_1\nimg_2\nimg_3\n')
    (splits / 'aug.txt').write_text('img_2\nimg_3\n')
    return labels


@pytest.mark.parametrize('split', ['train_aug', 'trainaug'])
def test_voc_mmseg_trainaug_with_labels_from_both_folders(tmp_path, split):
    labels = write_mmseg_voc(tmp_path)
    ds = _build('VOCAugDataset', tmp_path, split=split)
    assert ds.ids == ['img_0', 'img_1', 'img_2', 'img_3']
    for i, name in enumerate(ds.ids):
        assert np.array_equal(ds[i]['data_samples']['label'].numpy(), labels[name])
    assert ds.label_path(1).endswith(os.path.join('SegmentationClass', 'img_1.png'))
    assert ds.label_path(0).endswith(os.path.join('SegmentationClassAug', 'img_0.png'))
    assert _build('VOCAugDataset', tmp_path, split='aug').ids == ['img_2', 'img_3']


def test_voc_missing_label_names_both_folders(tmp_path):
    write_mmseg_voc(tmp_path)
    os.remove(tmp_path / 'SegmentationClass' / 'img_1.png')
    ds = _build('VOCAugDataset', tmp_path)
    with pytest.raises(FileNotFoundError, match=r"SegmentationClassAug/img_1.png' not found: "
                       r'.*\(not in SegmentationClass/ either\)'):
        ds.check_sample(1)
    ds = _build('VOCAugDataset', tmp_path, fallback_label_dir=None)
    with pytest.raises(FileNotFoundError, match=r"SegmentationClassAug/img_1.png' not found: "
                       r'restore it or remove its id from the split file\.$'):
        ds.check_sample(1)


def used_maps():
    """``coco_maps`` without the unused id 12: real data never holds one, and mmseg's
    converter table has no entry for it (it would keep the raw value)."""
    return {name: np.where(np.isin(raw, list(UNUSED_1BASED)), 0, raw)
            for name, raw in coco_maps().items()}


def write_mmseg_coco(root, maps):
    """Convert an official-layout folder the way mmseg's coco_stuff10k.py does."""
    official = root / 'official'
    write_cocostuff(official, maps)
    out = root / 'mmseg'
    names = list(maps)
    for i, (name, raw) in enumerate(maps.items()):
        folder = 'train2014' if i < len(names) - 1 else 'test2014'
        for sub in ('images', 'annotations'):
            os.makedirs(out / sub / folder, exist_ok=True)
        os.link(official / 'images' / f'{name}.jpg', out / 'images' / folder / f'{name}.jpg')
        train_ids = np.vectorize(MMSEG_TRAIN_ID.__getitem__)(raw).astype(np.uint8)
        Image.fromarray(train_ids).save(out / 'annotations' / folder /
                                        f'{name}_labelTrainIds.png')
    return official, out


@pytest.mark.parametrize('mode', ['171', '182'])
def test_cocostuff_mmseg_png_layout_matches_the_official_one(tmp_path, mode):
    maps = used_maps()
    official, converted = write_mmseg_coco(tmp_path, maps)
    mat = _build('COCOStuff10kDataset', official, split='train', label_mode=mode)
    png = _build('COCOStuff10kDataset', converted, split='all', label_mode=mode,
                 annotation='png')
    assert png.ids == list(maps) and png.metainfo == mat.metainfo
    for i in range(len(maps)):
        assert np.array_equal(png[i]['data_samples']['label'].numpy(),
                              mat[i]['data_samples']['label'].numpy())
        assert np.array_equal(png[i]['inputs'].numpy(), mat[i]['inputs'].numpy())
    train = _build('COCOStuff10kDataset', converted, split='train', annotation='png')
    test = _build('COCOStuff10kDataset', converted, split='test', annotation='png')
    assert train.ids == list(maps)[:1] and test.ids == list(maps)[1:]


def test_cocostuff_mmseg_png_errors(tmp_path):
    maps = used_maps()
    _, converted = write_mmseg_coco(tmp_path, maps)
    with pytest.raises(FileNotFoundError, match="mmseg's converted layout; set "
                                                "annotation='png'"):
        _build('COCOStuff10kDataset', converted)
    name = list(maps)[0]
    label = converted / 'annotations' / 'train2014' / f'{name}_labelTrainIds.png'
    Image.fromarray(np.full(maps[name].shape, 172, np.uint8)).save(label)
    ds = _build('COCOStuff10kDataset', converted, annotation='png')
    with pytest.raises(ValueError, match=r"_labelTrainIds.png' holds values \[172\] outside "
                                         "mmseg's train ids 0..171"):
        ds.check_sample(0)
    os.remove(label)
    with pytest.raises(ValueError, match=r'No \*_labelTrainIds.png files under'):
        _build('COCOStuff10kDataset', converted, annotation='png')
