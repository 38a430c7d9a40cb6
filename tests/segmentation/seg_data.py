"""Tiny segmentation datasets written in the official layouts, shared by the tests here."""
import os

import numpy as np
from PIL import Image
from scipy.io import savemat

H, W = 40, 56


def palette_png(path, label: np.ndarray) -> None:
    """A palette PNG whose colours differ from its indices (as VOC's)."""
    png = Image.fromarray(label.astype(np.uint8), mode='P')
    png.putpalette([(i * 37) % 256 for i in range(256 * 3)])
    png.save(path)


def voc_label(seed: int, h: int = H, w: int = W) -> np.ndarray:
    label = np.random.default_rng(seed).integers(0, 21, size=(h, w)).astype(np.uint8)
    label[:2], label[:, -3:] = 255, 255          # VOC's void border
    return label


def write_voc(root, n: int = 3, label_dir: str = 'SegmentationClassAug', sizes=None) -> dict:
    """VOC 2012 aug layout with ``n`` samples ``img_<i>`` in every split file; returns
    ``{id: label}``."""
    for sub in ('JPEGImages', label_dir, 'ImageSets/Segmentation'):
        os.makedirs(root / sub, exist_ok=True)
    labels = {}
    for i in range(n):
        h, w = sizes[i] if sizes else (H, W)
        name, labels[f'img_{i}'] = f'img_{i}', voc_label(i, h, w)
        image = np.random.default_rng(100 + i).integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / 'JPEGImages' / f'{name}.jpg', quality=95)
        palette_png(root / label_dir / f'{name}.png', labels[name])
    for split in ('train_aug', 'val'):
        (root / 'ImageSets/Segmentation' / f'{split}.txt').write_text(
            ''.join(f'{name}\n' for name in labels))
    return labels


def coco_maps() -> dict:
    """Two raw COCO-Stuff maps covering 0, unused ids, first/last used ids and stuff."""
    a = np.zeros((H, W), dtype=np.uint16)
    a[5:15, 5:20], a[15:25, 0:10], a[20:30, 30:50], a[0:5, 40:56] = 1, 12, 182, 13
    b = np.zeros((H - 8, W), dtype=np.uint16)
    b[:, :10], b[:, 10:20], b[:, 20:30], b[:, 30:40] = 91, 92, 26, 171
    return dict(COCO_train2014_000000000077=a, COCO_train2014_000000000078=b)


def write_cocostuff(root, maps) -> None:
    """cocostuff-10k-v1.1 layout: images/, annotations/*.mat (field S), imageLists/."""
    for sub in ('images', 'annotations', 'imageLists'):
        os.makedirs(root / sub, exist_ok=True)
    for i, (name, raw) in enumerate(maps.items()):
        image = np.random.default_rng(i).integers(0, 256, raw.shape + (3,), dtype=np.uint8)
        Image.fromarray(image).save(root / 'images' / f'{name}.jpg')
        savemat(root / 'annotations' / f'{name}.mat', dict(S=raw))
    for split in ('train', 'test'):
        (root / 'imageLists' / f'{split}.txt').write_text(''.join(f'{n}\n' for n in maps))
