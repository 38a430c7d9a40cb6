"""Segmentation dataset readers on tiny files written in the official formats: VOC 2012 aug
(JPEG + palette PNG + split files) and COCO-Stuff-10k v1.1 (.mat field S, image lists and a
COCO-style json with RLE and polygon annotations)."""
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.io import savemat
from seg_data import H, W, coco_maps, palette_png, voc_label, write_cocostuff, write_voc

from kdbench.registry import DATASETS
from tasks.segmentation import datasets as seg_datasets  # noqa: F401  (registers)
from tasks.segmentation.transforms import train_pipeline

VOC_NAMES = ['background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
             'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
             'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor']


def _voc(root, **kwargs):
    return DATASETS.build(dict(type='VOCAugDataset', data_root=str(root), **kwargs))


def test_voc_sample_exact_labels(tmp_path):
    labels = write_voc(tmp_path)
    ds = _voc(tmp_path, split='val')
    assert len(ds) == 3 and ds.metainfo['classes'] == tuple(VOC_NAMES)
    for i, name in enumerate(labels):
        sample = ds[i]
        image, label = sample['inputs'], sample['data_samples']['label']
        assert image.dtype == torch.uint8 and image.shape == (3, H, W)
        assert label.dtype == torch.int64 and label.shape == (H, W)
        assert torch.equal(label, torch.from_numpy(labels[name]).long())  # indices, 255 kept
        written = np.asarray(Image.open(tmp_path / 'JPEGImages' / f'{name}.jpg').convert('RGB'))
        # RGB order, CHW layout (JPEG decoders may differ by a few levels)
        assert np.abs(image.permute(1, 2, 0).numpy().astype(int) - written).max() <= 3


def test_voc_plain_label_dir_grayscale(tmp_path):
    write_voc(tmp_path, n=1, label_dir='SegmentationClass')
    label = voc_label(7)
    Image.fromarray(label, mode='L').save(tmp_path / 'SegmentationClass' / 'img_0.png')
    ds = _voc(tmp_path, split='train_aug', label_dir='SegmentationClass')
    assert np.array_equal(ds[0]['data_samples']['label'].numpy(), label)


def test_voc_train_pipeline(tmp_path):
    write_voc(tmp_path, n=2)
    ds = _voc(tmp_path, pipeline=train_pipeline(crop_size=64, base_size=48))
    for i in range(2):
        sample = ds[i]
        assert sample['inputs'].shape == (3, 64, 64) and sample['inputs'].dtype == torch.uint8
        label = sample['data_samples']['label']
        assert label.shape == (64, 64)
        assert set(label.unique().tolist()) <= set(range(21)) | {255}


def _break(path, content: bytes = b'not an image at all') -> None:
    with open(path, 'wb') as f:
        f.write(content)


VOC_ERRORS = {
    'no root': (shutil.rmtree, {}, FileNotFoundError, 'VOC data root'),
    'no split file': (lambda r: os.remove(r / 'ImageSets/Segmentation/val.txt'),
                      dict(split='val'), FileNotFoundError, "Split file .*val.txt' not found"),
    'empty split': (lambda r: (r / 'ImageSets/Segmentation/val.txt').write_text('\n'),
                    dict(split='val'), ValueError, 'val.txt.* lists no ids'),
    'unknown split': (lambda r: None, dict(split='test'), ValueError,
                      r"split must be one of \['train_aug', 'val', 'train', 'trainval', "
                      r"'trainaug', 'aug'\]"),
}


@pytest.mark.parametrize('case', list(VOC_ERRORS))
def test_voc_init_errors(tmp_path, case):
    write_voc(tmp_path, n=1)
    breaker, kwargs, error, message = VOC_ERRORS[case]
    breaker(tmp_path)
    with pytest.raises(error, match=message):
        _voc(tmp_path, **kwargs)


def _truncate(path) -> None:
    _break(path, path.read_bytes()[:200])


def _mismatched_label(root):
    palette_png(root / 'SegmentationClassAug/img_1.png', voc_label(1, H + 1, W))


def _out_of_range_label(root):
    label = voc_label(1)
    label[5, 5], label[6, 6] = 21, 200
    palette_png(root / 'SegmentationClassAug/img_1.png', label)


SAMPLE_ERRORS = {
    'no image': (lambda r: os.remove(r / 'JPEGImages/img_1.jpg'), FileNotFoundError,
                 "Image '.*img_1.jpg' not found"),
    'no label': (lambda r: os.remove(r / 'SegmentationClassAug/img_1.png'), FileNotFoundError,
                 "Label file '.*img_1.png' not found"),
    'corrupt image': (lambda r: _break(r / 'JPEGImages/img_1.jpg'), ValueError,
                      "Cannot read image '.*img_1.jpg'"),
    'truncated image': (lambda r: _truncate(r / 'JPEGImages/img_1.jpg'), ValueError,
                        "Cannot read image '.*img_1.jpg'"),
    'truncated label': (lambda r: _truncate(r / 'SegmentationClassAug/img_1.png'), ValueError,
                        "Cannot read label '.*img_1.png'"),
    'corrupt label': (lambda r: _break(r / 'SegmentationClassAug/img_1.png'), ValueError,
                      "Cannot read label '.*img_1.png'"),
    'rgb label': (lambda r: Image.new('RGB', (W, H)).save(r / 'SegmentationClassAug/img_1.png'),
                  ValueError, "img_1.png' has 3 channels .*single-channel"),
    'size mismatch': (_mismatched_label, ValueError,
                      rf"img_1.png' is {H + 1}x{W} but its image .*img_1.jpg' is {H}x{W}"),
    'value range': (_out_of_range_label, ValueError,
                    r"img_1.png' holds values \[21, 200\] outside the allowed 0..20, 255"),
}


@pytest.mark.parametrize('case', list(SAMPLE_ERRORS))
def test_voc_sample_errors_found_on_load(tmp_path, case):
    write_voc(tmp_path, n=3)
    breaker, error, message = SAMPLE_ERRORS[case]
    breaker(tmp_path)
    ds = _voc(tmp_path, split='val')  # init does not open sample files
    ds.check_sample(0)
    ds.check_sample(2)
    with pytest.raises(error, match=message):
        ds.check_sample(1)
    with pytest.raises(error, match=message):
        ds[1]


# --------------------------------------------------------------------------- COCO-Stuff

UNUSED_1BASED = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91}   # COCO things never annotated
USED_1BASED = [i for i in range(1, 183) if i not in UNUSED_1BASED]


def _expected(raw: np.ndarray, mode: str) -> np.ndarray:
    """Train ids of a raw COCO-Stuff map (0 unlabeled, 1..182), computed independently."""
    if mode == '182':
        table = {0: 255, **{i: i - 1 for i in range(1, 183)}}
    else:
        table = {i: 255 for i in range(183)}
        table.update({raw_id: new for new, raw_id in enumerate(USED_1BASED)})
    return np.vectorize(table.__getitem__)(raw).astype(np.int64)


def _write_json(root, maps, extra=()) -> dict:
    """COCO-style json: one RLE annotation per raw id of each map, plus ``extra``
    annotations ``(image index, category_id, segmentation)``."""
    images, anns = [], []
    for img_id, (name, raw) in enumerate(maps.items(), start=1):
        images.append(dict(id=img_id, file_name=f'{name}.jpg', height=int(raw.shape[0]),
                           width=int(raw.shape[1])))
        for cat in np.unique(raw[raw > 0]):
            rle = mask_utils.encode(np.asfortranarray((raw == cat).astype(np.uint8)))
            anns.append(dict(image_id=img_id, category_id=int(cat), iscrowd=0,
                             segmentation=dict(size=rle['size'],
                                               counts=rle['counts'].decode('ascii'))))
    for index, cat, seg in extra:
        anns.append(dict(image_id=index + 1, category_id=cat, iscrowd=0, segmentation=seg))
    for i, ann in enumerate(anns, start=1):
        ann['id'] = i
    categories = [dict(id=i, name=f'c{i}', supercategory='x') for i in range(1, 184)]
    content = dict(images=images, annotations=anns, categories=categories)
    (root / 'cocostuff-10k-v1.1.json').write_text(json.dumps(content))
    return content


def _coco(root, **kwargs):
    return DATASETS.build(dict(type='COCOStuff10kDataset', data_root=str(root), **kwargs))


@pytest.mark.parametrize('mode', ['171', '182'])
def test_cocostuff_mat_label_mapping(tmp_path, mode):
    maps = coco_maps()
    write_cocostuff(tmp_path, maps)
    ds = _coco(tmp_path, split='test', label_mode=mode)
    assert len(ds) == 2
    for i, raw in enumerate(maps.values()):
        sample = ds[i]
        assert sample['inputs'].shape == (3,) + raw.shape and sample['inputs'].dtype == torch.uint8
        label = sample['data_samples']['label']
        assert label.dtype == torch.int64
        assert np.array_equal(label.numpy(), _expected(raw, mode))
    a = ds[0]['data_samples']['label']
    assert a[0, 0] == 255 and a[5, 5] == 0                      # 0 -> 255, 1 -> 0
    assert a[15, 0] == (255 if mode == '171' else 11)           # street sign (unused)
    assert a[20, 30] == (170 if mode == '171' else 181)         # wood (last id)
    classes = ds.metainfo['classes']
    if mode == '171':
        assert len(classes) == 171 and 'street sign' not in classes and 'hair brush' not in classes
        assert classes[:3] == ('person', 'bicycle', 'car') and classes[11] == 'stop sign'
    else:
        assert len(classes) == 182 and classes[11] == 'street sign'
        assert classes[90] == 'hair brush' and classes[91] == 'banner'
    assert classes[-1] == 'wood'


def test_cocostuff_json_matches_mat(tmp_path):
    maps = coco_maps()
    polygon = [[30.0, 2.0, 50.0, 2.0, 50.0, 12.0, 30.0, 12.0]]
    name_b = list(maps)[1]
    painted = maps[name_b].copy()
    rle = mask_utils.merge(mask_utils.frPyObjects(polygon, *painted.shape))
    painted[mask_utils.decode(rle) > 0] = 150
    everywhere = mask_utils.encode(np.asfortranarray(np.ones((H, W), np.uint8)))
    everywhere['counts'] = everywhere['counts'].decode('ascii')
    extra = [(1, 150, polygon),                          # polygon, painted last
             (0, 183, everywhere),                       # 'other' stays unlabeled
             (0, 0, [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]])]   # category 0 too
    _write_json(tmp_path, maps, extra)
    write_cocostuff(tmp_path, {**maps, name_b: painted})
    assert (painted == 150).sum() > 100
    for mode in ('171', '182'):
        mat = _coco(tmp_path, label_mode=mode)
        js = _coco(tmp_path, label_mode=mode, annotation='json')
        for i in range(2):
            from_json = js[i]['data_samples']['label']
            assert torch.equal(from_json, mat[i]['data_samples']['label'])
            raw = painted if i == 1 else maps[list(maps)[0]]
            assert np.array_equal(from_json.numpy(), _expected(raw, mode))


COCO_ERRORS = {
    'no root': (shutil.rmtree, {}, FileNotFoundError, 'COCO-Stuff-10k data root'),
    'no list': (lambda r: os.remove(r / 'imageLists/train.txt'), {}, FileNotFoundError,
                "Split file .*train.txt' not found"),
    'bad split': (lambda r: None, dict(split='val'), ValueError,
                  r"split must be one of \['train', 'test', 'all'\]"),
    'bad mode': (lambda r: None, dict(label_mode='170'), ValueError,
                 r"label_mode must be one of \['171', '182'\], got '170'"),
    'bad annotation': (lambda r: None, dict(annotation='txt'), ValueError,
                       r"annotation must be one of \['mat', 'json', 'png'\]"),
    'no json': (lambda r: None, dict(annotation='json'), FileNotFoundError,
                "COCO-Stuff json '.*cocostuff-10k-v1.1.json' not found"),
    'corrupt json': (lambda r: _break(r / 'cocostuff-10k-v1.1.json', b'{"images": ['),
                     dict(annotation='json'), ValueError, "Cannot read COCO json '.*json'"),
}


@pytest.mark.parametrize('case', list(COCO_ERRORS))
def test_cocostuff_init_errors(tmp_path, case):
    write_cocostuff(tmp_path, coco_maps())
    breaker, kwargs, error, message = COCO_ERRORS[case]
    breaker(tmp_path)
    with pytest.raises(error, match=message):
        _coco(tmp_path, **kwargs)


NAME = 'COCO_train2014_000000000078'


def _mat(root, **fields):
    savemat(root / 'annotations' / f'{NAME}.mat', fields)


COCO_SAMPLE_ERRORS = {
    'no image': (lambda r: os.remove(r / f'images/{NAME}.jpg'), FileNotFoundError,
                 f"Image '.*{NAME}.jpg' not found"),
    'no mat': (lambda r: os.remove(r / f'annotations/{NAME}.mat'), FileNotFoundError,
               f"Label file '.*{NAME}.mat' not found"),
    'corrupt mat': (lambda r: _break(r / f'annotations/{NAME}.mat'), ValueError,
                    f"Cannot read label '.*{NAME}.mat'"),
    'mat without S': (lambda r: _mat(r, L=np.zeros((H - 8, W), np.uint8)), ValueError,
                      f"Cannot read label '.*{NAME}.mat' .*field 'S'"),
    'size mismatch': (lambda r: _mat(r, S=np.zeros((H, W), np.uint8)), ValueError,
                      f"{NAME}.mat' is {H}x{W} but its image .*is {H - 8}x{W}"),
    'value 183': (lambda r: _mat(r, S=np.full((H - 8, W), 183, np.uint16)), ValueError,
                  rf"{NAME}.mat' holds values \[183\] outside the allowed 0..182"),
}


@pytest.mark.parametrize('case', list(COCO_SAMPLE_ERRORS))
def test_cocostuff_sample_errors(tmp_path, case):
    write_cocostuff(tmp_path, coco_maps())
    breaker, error, message = COCO_SAMPLE_ERRORS[case]
    breaker(tmp_path)
    ds = _coco(tmp_path)
    ds.check_sample(0)
    with pytest.raises(error, match=message):
        ds.check_sample(1)


def test_cocostuff_json_sample_errors(tmp_path):
    maps = coco_maps()
    write_cocostuff(tmp_path, maps)
    first = list(maps)[0]
    _write_json(tmp_path, {first: maps[first]}, extra=[(0, 184, [[0, 0, 3, 0, 3, 3]])])
    ds = _coco(tmp_path, annotation='json')
    with pytest.raises(ValueError, match=r"json': annotation \d+ of '.*077' has category_id "
                                         '184 outside 0..183'):
        ds.check_sample(0)
    with pytest.raises(ValueError, match=f"json' has no image named '{NAME}'"):
        ds.check_sample(1)


# --------------------------------------------------------------------------- loader

def test_runner_dataloader_whole_images_batched(tmp_path):
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    labels = write_voc(tmp_path, n=3, sizes=[(H, W), (H + 6, W - 10), (H - 4, W + 3)])
    cfg = dict(batch_size=3, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
               collate_fn=dict(type='kdbench.seg_collate'),
               dataset=dict(type='VOCAugDataset', data_root=str(tmp_path), split='val'))
    with DefaultScope.overwrite_default_scope('kdbench'):
        loader = Runner.build_dataloader(cfg, seed=0)
    batch = next(iter(loader))
    inputs, label = batch['inputs'], batch['data_samples']['label']
    assert inputs.shape == (3, 3, H + 6, W + 3) and inputs.dtype == torch.uint8
    assert label.shape == (3, H + 6, W + 3) and label.dtype == torch.int64
    for i, lab in enumerate(labels.values()):
        h, w = lab.shape
        assert np.array_equal(label[i, :h, :w].numpy(), lab)
        assert (label[i, h:] == 255).all() and (label[i, :, w:] == 255).all()
        assert (inputs[i, :, h:] == 0).all() and (inputs[i, :, :, w:] == 0).all()
