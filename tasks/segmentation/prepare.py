"""Pascal VOC 2012 aug from the two official releases (``tools/prepare_voc_aug.py``).

Inputs: VOC 2012 (``VOCtrainval_11-May-2012.tar`` or its extracted
``VOCdevkit/VOC2012``) and the SBD release (``benchmark.tgz`` or its extracted
``benchmark_RELEASE/dataset/{cls/*.mat, train.txt, val.txt}``; torchvision's ``SBDataset``
download, which moves ``cls/`` and the lists to its root, works too). Each SBD ``.mat``
holds the struct ``GTcls`` whose field ``Segmentation`` is the ``[H, W]`` class map
(0..20, no 255 border).

Output, inside the VOC2012 folder (the layout ``VOCAugDataset`` reads):
``SegmentationClassAug/<id>.png`` (palette PNGs of class indices, VOC's colours) for
every id of ``train_aug`` and ``val`` (VOC's own label where VOC has one, i.e. VOC train
and val, with its 255 border; SBD's otherwise), and
``ImageSets/Segmentation/train_aug.txt``: VOC train + SBD train + SBD val minus VOC val,
sorted (10582 ids for the real releases).
"""
from __future__ import annotations

import os
import tarfile
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np
from PIL import Image

from .outputs import label_palette

TRAIN_AUG_SIZE = 10582
VOC_TAR_ROOT = os.path.join('VOCdevkit', 'VOC2012')


def extract(archive: str, dest: str, keep: Callable[[str], bool] = lambda name: True) -> None:
    """Extract the members of ``archive`` whose name ``keep`` accepts into ``dest``
    (tar's ``data`` filter where Python has it: no absolute paths or links out)."""
    os.makedirs(dest, exist_ok=True)
    try:
        with tarfile.open(archive) as tar:
            members = (m for m in tar if keep(m.name))
            if hasattr(tarfile, 'data_filter'):
                tar.extractall(dest, members=members, filter='data')
            else:  # pragma: no cover  (Python < 3.11.4)
                tar.extractall(dest, members=members)
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ValueError(f"Cannot extract '{archive}' ({err}); download it again.") from err


def find_voc(path: str, out_root: str) -> str:
    """The VOC2012 folder: ``path`` itself, ``path/VOC2012``, ``path/VOCdevkit/VOC2012``,
    or the VOC tar ``path`` extracted into ``out_root``."""
    if os.path.isfile(path):
        extract(path, out_root)
        path = out_root
    for folder in (path, os.path.join(path, 'VOC2012'), os.path.join(path, VOC_TAR_ROOT)):
        if os.path.isdir(os.path.join(folder, 'JPEGImages')):
            return folder
    raise FileNotFoundError(f"No VOC2012 folder (with JPEGImages/) at '{path}', "
                            f"'{path}/VOC2012' or '{path}/{VOC_TAR_ROOT}': pass the extracted "
                            'VOCdevkit/VOC2012 folder or VOCtrainval_11-May-2012.tar '
                            '(or --download).')


def find_sbd(path: str, out_root: str) -> str:
    """The SBD folder holding ``cls/``, ``train.txt`` and ``val.txt``: ``path``,
    ``path/dataset`` or ``path/benchmark_RELEASE/dataset``, or the ``benchmark.tgz``
    ``path`` with just those extracted into ``out_root``."""
    if os.path.isfile(path):
        extract(path, out_root, keep=lambda name: '/dataset/cls/' in name
                or name.endswith(('/dataset/train.txt', '/dataset/val.txt')))
        path = out_root
    for folder in (path, os.path.join(path, 'dataset'),
                   os.path.join(path, 'benchmark_RELEASE', 'dataset')):
        if os.path.isdir(os.path.join(folder, 'cls')):
            return folder
    raise FileNotFoundError(f"No SBD folder (with cls/, train.txt, val.txt) at '{path}', "
                            f"'{path}/dataset' or '{path}/benchmark_RELEASE/dataset': pass the "
                            'extracted benchmark_RELEASE folder or benchmark.tgz (or --download).')


def read_list(path: str) -> List[str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Split file '{path}' not found; the release is incomplete: "
                                'extract it again.')
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def read_sbd_label(path: str) -> np.ndarray:
    """uint8 ``[H, W]`` class map of an SBD ``cls/<id>.mat`` (``GTcls.Segmentation``)."""
    from scipy.io import loadmat
    if not os.path.isfile(path):
        raise FileNotFoundError(f"SBD label '{path}' not found; the SBD release is incomplete.")
    try:
        label = loadmat(path, squeeze_me=True, struct_as_record=False)['GTcls'].Segmentation
    except Exception as err:  # scipy raises ValueError, TypeError, KeyError, OSError...
        raise ValueError(f"Cannot read SBD label '{path}' ({type(err).__name__}: {err}); it "
                         "must be a MATLAB file with the struct GTcls.Segmentation.") from err
    label = np.asarray(label)
    if label.ndim != 2 or label.dtype.kind not in 'ui' or label.size == 0 or label.max() > 20:
        raise ValueError(f"SBD label '{path}' GTcls.Segmentation is {label.dtype} "
                         f'{label.shape}; expected an HxW map of classes 0..20.')
    return label.astype(np.uint8)


def read_voc_label(path: str) -> np.ndarray:
    """uint8 ``[H, W]`` class indices of a VOC ``SegmentationClass`` palette PNG."""
    with Image.open(path) as png:
        if png.mode != 'P':
            raise ValueError(f"VOC label '{path}' is a {png.mode} image; VOC's "
                             'SegmentationClass PNGs are palette images of class indices.')
        return np.asarray(png)


def write_label(path: str, label: np.ndarray) -> None:
    png = Image.fromarray(label, mode='P')
    png.putpalette(label_palette().flatten().tolist())
    png.save(path)


def train_aug_ids(voc_train: Iterable[str], voc_val: Iterable[str],
                  sbd_train: Iterable[str], sbd_val: Iterable[str]) -> List[str]:
    """VOC train + SBD train + SBD val minus VOC val, sorted."""
    return sorted((set(voc_train) | set(sbd_train) | set(sbd_val)) - set(voc_val))


def prepare_voc_aug(voc: str, sbd: str, out_root: str = 'data',
                    expected: Optional[int] = TRAIN_AUG_SIZE,
                    log: Callable[[str], None] = print) -> Dict[str, int]:
    """Write ``SegmentationClassAug/`` and ``train_aug.txt`` into the VOC2012 folder.

    Args:
        voc: VOC2012 folder, VOCdevkit, or the VOC 2012 trainval tar.
        sbd: SBD folder (see :func:`find_sbd`) or ``benchmark.tgz``.
        out_root: where archives are extracted.
        expected: required number of train_aug ids (``None``: any).
        log: progress lines.

    Returns:
        counts: ``train_aug``, ``val``, ``from_voc`` and ``from_sbd`` labels written.
    """
    voc_dir, sbd_dir = find_voc(voc, out_root), find_sbd(sbd, out_root)
    splits = os.path.join(voc_dir, 'ImageSets', 'Segmentation')
    voc_train = read_list(os.path.join(splits, 'train.txt'))
    voc_val = read_list(os.path.join(splits, 'val.txt'))
    sbd_train = read_list(os.path.join(sbd_dir, 'train.txt'))
    sbd_val = read_list(os.path.join(sbd_dir, 'val.txt'))
    ids = train_aug_ids(voc_train, voc_val, sbd_train, sbd_val)
    if expected is not None and len(ids) != expected:
        raise ValueError(f'train_aug has {len(ids)} ids, expected {expected} (VOC train '
                         f'{len(voc_train)}, VOC val {len(voc_val)}, SBD train {len(sbd_train)}, '
                         f'SBD val {len(sbd_val)}): are both releases complete (VOC 2012, SBD '
                         'benchmark_RELEASE)? Pass --expect N to accept another count.')
    missing = [i for i in ids + voc_val
               if not os.path.isfile(os.path.join(voc_dir, 'JPEGImages', f'{i}.jpg'))]
    if missing:
        raise FileNotFoundError(f"{len(missing)} images missing from '{voc_dir}/JPEGImages', "
                                f'e.g. {missing[:3]}: use the VOC 2012 trainval release.')
    out_dir = os.path.join(voc_dir, 'SegmentationClassAug')
    os.makedirs(out_dir, exist_ok=True)
    from_voc = set(voc_train) | set(voc_val)
    counts = dict(train_aug=len(ids), val=len(voc_val), from_voc=0, from_sbd=0)
    todo = sorted(set(ids) | set(voc_val))
    for n, name in enumerate(todo, start=1):
        if name in from_voc:
            label = read_voc_label(os.path.join(voc_dir, 'SegmentationClass', f'{name}.png'))
            counts['from_voc'] += 1
        else:
            label = read_sbd_label(os.path.join(sbd_dir, 'cls', f'{name}.mat'))
            counts['from_sbd'] += 1
        write_label(os.path.join(out_dir, f'{name}.png'), label)
        if n % 1000 == 0 or n == len(todo):
            log(f'{n}/{len(todo)} labels written to {out_dir}')
    with open(os.path.join(splits, 'train_aug.txt'), 'w') as f:
        f.writelines(f'{name}\n' for name in ids)
    log(f"train_aug: {len(ids)} ids -> {os.path.join(splits, 'train_aug.txt')}; val: "
        f"{len(voc_val)} ids; labels: {counts['from_voc']} from VOC, {counts['from_sbd']} "
        'from SBD.')
    return counts


def download_voc_aug(root: str) -> Dict[str, str]:
    """Download VOC 2012 trainval and SBD with torchvision's dataset classes into
    ``root`` (``root/VOCdevkit/VOC2012`` and ``root/SBD``); returns both paths."""
    from torchvision.datasets import SBDataset, VOCSegmentation
    VOCSegmentation(root, year='2012', image_set='trainval', download=True)
    SBDataset(os.path.join(root, 'SBD'), image_set='train', mode='segmentation',
              download=True)
    return dict(voc=os.path.join(root, VOC_TAR_ROOT), sbd=os.path.join(root, 'SBD'))
