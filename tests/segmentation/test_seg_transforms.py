"""Segmentation pipelines (albumentations 2 + kdbench's short-side scale), their config
checks, per-worker reseeding and the padding collate."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import tasks.classification  # noqa: F401  (its torchvision names must stay its own)
from kdbench.registry import FUNCTIONS, TRANSFORMS
from tasks.segmentation.transforms import (SegRandomShortSideScale, build_seg_pipeline,
                                           build_seg_transform, seg_collate, train_pipeline,
                                           val_pipeline)


def _pair(h: int, w: int, seed: int = 0):
    """Label with 21 classes and an image whose colour encodes it (R = 10 * label,
    G = column, B = row), so geometric ops on both can be checked for alignment."""
    label = np.random.default_rng(seed).integers(0, 21, size=(h, w)).astype(np.uint8)
    rows, cols = np.mgrid[:h, :w]
    image = np.stack([label * 10, cols, rows], axis=-1).astype(np.uint8)
    return image, label


def test_flip_moves_image_and_label_together():
    image, label = _pair(12, 17)
    pipeline = build_seg_pipeline([dict(type='HorizontalFlip', p=0.5)], seed=3)
    flipped = []
    for _ in range(20):
        out_image, out_label = pipeline(image, label)
        assert np.array_equal(out_image[..., 0], out_label * 10)
        flipped.append(bool(out_image[0, 0, 1] == 16))
        assert np.array_equal(out_label, label[:, ::-1] if flipped[-1] else label)
    assert 3 < sum(flipped) < 17


@pytest.mark.parametrize('h, w', [(30, 50), (50, 30)])
def test_short_side_scale_range_and_aspect(h, w):
    image, label = _pair(h, w)
    scale = build_seg_pipeline([dict(type='SegRandomShortSideScale', base_size=40)], seed=0)
    shorts = []
    for _ in range(30):
        out_image, out_label = scale(image, label)
        oh, ow = out_label.shape
        assert out_image.shape == (oh, ow, 3)
        shorts.append(min(oh, ow))
        assert 20 <= shorts[-1] <= 80
        assert abs(max(oh, ow) - shorts[-1] * max(h, w) / min(h, w)) <= 1
        assert set(np.unique(out_label)) <= set(np.unique(label))          # nearest
    assert min(shorts) < 30 and max(shorts) > 65          # spans the range


def test_short_side_scale_is_exact_and_aligned():
    image, label = _pair(20, 30)
    out = SegRandomShortSideScale(base_size=40, scale_range=(1.0, 1.0))(image=image, mask=label)
    assert out['image'].shape == (40, 60, 3)
    assert np.array_equal(out['mask'], np.repeat(np.repeat(label, 2, 0), 2, 1))
    assert (out['image'][..., 0] % 10 != 0).any()                  # image bilinear
    column = np.clip((np.arange(60) + 0.5) / 2 - 0.5, 0, 29)       # half-pixel centres
    assert np.abs(out['image'][..., 1] - column).max() <= 0.5
    with pytest.raises(ValueError, match='base_size > 0 and 0 < low <= high'):
        SegRandomShortSideScale(base_size=40, scale_range=(2.0, 1.0))


def test_train_pipeline_pads_small_images_with_255():
    image, label = _pair(20, 30)
    cfgs = train_pipeline(crop_size=64, base_size=10)
    cfgs[1]['scale_range'] = (1.0, 1.0)                 # short side 10: image 10 x 15
    pipeline = build_seg_pipeline(cfgs, seed=0)
    for _ in range(6):
        out_image, out_label = pipeline(image, label)
        assert out_image.shape == (64, 64, 3) and out_label.shape == (64, 64)
        assert out_image.dtype == np.uint8 and out_label.dtype == np.uint8
        assert (out_label[10:] == 255).all() and (out_label[:, 15:] == 255).all()
        assert (out_label[:10, :15] < 21).all()
        assert (out_image[12:, 17:] == 0).all()          # 0 fill (blur reaches 2 px at most)


def test_train_pipeline_crops_large_images_exactly():
    image, label = _pair(100, 130)
    pipeline = build_seg_pipeline(train_pipeline(crop_size=48, base_size=60), seed=1)
    for _ in range(6):
        out_image, out_label = pipeline(image, label)
        assert out_image.shape == (48, 48, 3) and out_label.shape == (48, 48)
        assert set(np.unique(out_label)) <= set(range(21)) | {255}


def test_val_pipelines():
    assert val_pipeline() == [] and build_seg_pipeline(val_pipeline()) is None
    image, label = _pair(37, 45)
    out_image, out_label = build_seg_pipeline(val_pipeline(resize=513))(image, label)
    assert out_image.shape == (513, 513, 3) and out_label.shape == (513, 513)
    assert set(np.unique(out_label)) == set(np.unique(label))             # nearest


def test_transform_config_errors_and_names():
    with pytest.raises(ValueError, match="Unknown segmentation transform 'Flip'.*"
                                         "SegRandomShortSideScale"):
        build_seg_transform(dict(type='Flip'))
    with pytest.raises(ValueError, match=r"PadIfNeeded got unknown argument\(s\) "
                                         r"\['mask_value'\].*fill_mask"):
        build_seg_transform(dict(type='PadIfNeeded', min_height=8, min_width=8,
                                 mask_value=255))
    import albumentations as A
    from torchvision.transforms import v2
    assert TRANSFORMS.get('RandomCrop') is v2.RandomCrop              # classification's
    assert isinstance(build_seg_transform(dict(type='RandomCrop', height=4, width=4)),
                      A.RandomCrop)
    assert TRANSFORMS.get('SegRandomShortSideScale') is SegRandomShortSideScale
    assert FUNCTIONS.get('seg_collate') is seg_collate


class _Repeat(Dataset):
    """One image, ``n`` times, through a random short-side scale: returns the short side."""

    def __init__(self, n: int):
        self.n = n
        self.pipeline = build_seg_pipeline([dict(type='SegRandomShortSideScale', base_size=200,
                                                 scale_range=(0.5, 2.0))])
        self.image, self.label = _pair(8, 8)

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return self.pipeline(self.image, self.label)[1].shape[0]


def test_workers_draw_different_augmentations():
    loader = DataLoader(_Repeat(8), batch_size=4, num_workers=2)
    epochs = [torch.cat(list(loader)).tolist() for _ in range(2)]
    # Two workers (batches 0 and 1) and two epochs: all four draws of 4 must differ.
    draws = [tuple(e[:4]) for e in epochs] + [tuple(e[4:]) for e in epochs]
    assert len(set(draws)) == 4, draws


def test_seg_collate_pads_bottom_right():
    a = dict(inputs=torch.full((3, 4, 5), 7, dtype=torch.uint8),
             data_samples=dict(label=torch.full((4, 5), 3, dtype=torch.int64)))
    b = dict(inputs=torch.full((3, 6, 2), 9, dtype=torch.uint8),
             data_samples=dict(label=torch.full((6, 2), 1, dtype=torch.int64)))
    batch = seg_collate([a, b])
    inputs, label = batch['inputs'], batch['data_samples']['label']
    assert inputs.shape == (2, 3, 6, 5) and inputs.dtype == torch.uint8
    assert label.shape == (2, 6, 5) and label.dtype == torch.int64
    assert (inputs[0, :, :4, :5] == 7).all() and (inputs[0, :, 4:] == 0).all()
    assert (inputs[1, :, :, :2] == 9).all() and (inputs[1, :, :, 2:] == 0).all()
    assert (label[0, :4, :5] == 3).all() and (label[0, 4:] == 255).all()
    assert (label[1, :, :2] == 1).all() and (label[1, :, 2:] == 255).all()


class _Sized(Dataset):
    """Sample ``i``: image of ``4 + i`` rows filled with ``i + 1``, label filled with ``i``."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return dict(inputs=torch.full((3, 4 + i, 5), i + 1, dtype=torch.uint8),
                    data_samples=dict(label=torch.full((4 + i, 5), i, dtype=torch.int64)))


def _collate_and_report(samples):
    batch = seg_collate(samples)
    return batch, batch['inputs'].is_shared() and batch['data_samples']['label'].is_shared()


def test_seg_collate_in_a_worker_allocates_shared_memory():
    loader = DataLoader(_Sized(), batch_size=2, num_workers=1, collate_fn=_collate_and_report)
    batches = list(loader)
    assert [b['inputs'].shape[-2] for b, _ in batches] == [5, 7]
    for k, (batch, shared_in_worker) in enumerate(batches):
        assert shared_in_worker                          # no extra copy to reach the main process
        label = batch['data_samples']['label']
        assert label[0, :4 + 2 * k].eq(2 * k).all() and label[0, 4 + 2 * k:].eq(255).all()
        assert label[1].eq(2 * k + 1).all() and batch['inputs'][1].eq(2 * k + 2).all()
