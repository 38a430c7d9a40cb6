"""Classification datasets: CIFAR-100 (official pickles), ImageNet-style folders, and the
embedded digits set of the demo. Every sample is
``dict(inputs=uint8 [3, H, W], data_samples=dict(label=int))``."""
from __future__ import annotations

import os
import pickle
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torchvision.io import ImageReadMode, decode_image

from kdbench.data_contract import KDDataset
from kdbench.registry import DATASETS

from .transforms import build_pipeline

# What torchvision's decode_image reads (no BMP); matched case-insensitively.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.webp')


class _ClassificationDataset(KDDataset):
    """Common part: class names, pipeline, sample layout (the dataset contract's hooks:
    :mod:`kdbench.data_contract`)."""

    def __init__(self, classes: Sequence[str], pipeline: Optional[Sequence[dict]]):
        self.metainfo = dict(classes=tuple(classes))
        self.transform: Optional[Callable] = build_pipeline(pipeline)

    images: Tensor            # uint8 [N, 3, H, W] for in-memory datasets
    labels: np.ndarray        # int64 [N]

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int) -> Tuple[Tensor, int]:
        """The ``index``-th image as uint8 ``[3, H, W]`` and its label."""
        return self.images[index], int(self.labels[index])

    def check_sample(self, index: int) -> None:
        """Load (decode) sample ``index`` without the pipeline; raises FileNotFoundError/
        ValueError naming the faulty file (in-memory datasets are checked at init)."""
        self.load(index)

    def item_classes(self) -> np.ndarray:
        """Each item's label (int64 ``[N]``): held-out splits are stratified per class."""
        return self.labels

    def __getitem__(self, index: int) -> Dict:
        image, label = self.load(index)
        if self.transform is not None:
            image = self.transform(image)
        return dict(inputs=image, data_samples=dict(label=label))


def _unpickle(path: str) -> dict:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CIFAR-100 file '{path}' not found: data_root must hold the "
                                'extracted cifar-100-python/ folder (train, test, meta), as '
                                "torchvision's CIFAR100(root, download=True) leaves it "
                                '(tools/prepare_cifar100.py --download).')
    try:
        with open(path, 'rb') as f:
            return pickle.load(f, encoding='latin1')
    except Exception as err:
        raise ValueError(f"CIFAR-100 file '{path}' is not a readable CIFAR pickle "
                         f'({err}); download and extract it again.') from err


@DATASETS.register_module()
class CIFAR100(_ClassificationDataset):
    """CIFAR-100 from the official python files ``<data_root>/cifar-100-python/{train,test,meta}``.

    Args:
        data_root: folder holding ``cifar-100-python/``.
        split: ``'train'`` (50000) or ``'test'`` (10000).
        pipeline: transform configs.
    """

    #: Images per split (``tools/recipe.py`` counts iterations from them).
    SPLIT_SIZES = {'train': 50000, 'test': 10000}
    #: torchdistill's 45k/5k split: 50 held-out images per class.
    HOLDOUT_DEFAULT = {'size': 5000}
    HOW_TO_PREPARE = ('python tools/prepare_cifar100.py --download (offline: put the '
                      'official cifar-100-python.tar.gz in the data root first)')

    def __init__(self, data_root: str, split: str = 'train',
                 pipeline: Optional[Sequence[dict]] = None):
        if split not in ('train', 'test'):
            raise ValueError(f"CIFAR100 split must be 'train' or 'test', got '{split}'.")
        folder = os.path.join(data_root, 'cifar-100-python')
        meta = _unpickle(os.path.join(folder, 'meta'))
        super().__init__(meta['fine_label_names'], pipeline)
        path = os.path.join(folder, split)
        entry = _unpickle(path)
        try:
            images = np.asarray(entry['data'], dtype=np.uint8).reshape(-1, 3, 32, 32)
            labels = np.asarray(entry['fine_labels'], dtype=np.int64)
        except (KeyError, ValueError) as err:
            raise ValueError(f"CIFAR-100 file '{path}' lacks valid 'data' (N x 3072) / "
                             f"'fine_labels' entries: {err}") from err
        if len(images) != len(labels) or labels.min() < 0 or labels.max() >= 100:
            raise ValueError(f"CIFAR-100 file '{path}' has {len(images)} images and "
                             f'{len(labels)} labels in [{labels.min()}, {labels.max()}]; '
                             'expected matching counts and labels in [0, 100).')
        self.images, self.labels = torch.from_numpy(images), labels

    @staticmethod
    def required_files(data_root: str, split: str = 'train', **kwargs) -> Dict[str, str]:
        """Files that must exist before the dataset is built (kdbench's preflight)."""
        folder = os.path.join(data_root, 'cifar-100-python')
        return {'meta file': os.path.join(folder, 'meta'),
                'split file': os.path.join(folder, split)}


@DATASETS.register_module()
class ImageFolderDataset(_ClassificationDataset):
    """ImageNet-style folders: ``<data_root>/<split>/<class name>/<image>``.

    Classes are the sorted sub-folders of ``<data_root>/train`` when it exists (so every
    split shares one class index), else of the split's own folder.

    Args:
        data_root: dataset root.
        split: sub-folder, e.g. ``'train'`` or ``'val'``.
        pipeline: transform configs.
    """

    HOW_TO_PREPARE = ('the usual class-folder layout, e.g. ImageNet\'s train/ and val/ '
                      'with one folder of images per class')
    #: ImageNet-1k: 51247 of 1281167 images (~40 per class), about its 50000 val images.
    HOLDOUT_DEFAULT = {'fraction': 0.04}

    def __init__(self, data_root: str, split: str = 'train',
                 pipeline: Optional[Sequence[dict]] = None):
        root = os.path.join(data_root, split)
        if not os.path.isdir(root):
            raise FileNotFoundError(f"Image folder '{root}' not found: expected "
                                    f'{data_root}/{split}/<class>/<image files>.')
        class_root = os.path.join(data_root, 'train')
        class_root = class_root if os.path.isdir(class_root) else root
        classes = sorted(d.name for d in os.scandir(class_root) if d.is_dir())
        super().__init__(classes, pipeline)
        self.samples: List[Tuple[str, int]] = []
        for label, name in enumerate(classes):
            folder = os.path.join(root, name)
            if os.path.isdir(folder):
                self.samples += [(os.path.join(folder, f), label)
                                 for f in sorted(os.listdir(folder))
                                 if f.lower().endswith(IMAGE_EXTENSIONS)]
        if not self.samples:
            raise FileNotFoundError(f"No images ({', '.join(IMAGE_EXTENSIONS)}) under "
                                    f"'{root}/<class>/'.")
        self.labels = np.array([label for _, label in self.samples], dtype=np.int64)

    @staticmethod
    def required_files(data_root: str, split: str = 'train', **kwargs) -> Dict[str, str]:
        """Files that must exist before the dataset is built (kdbench's preflight)."""
        return {'split folder': os.path.join(data_root, split)}

    def load(self, index: int) -> Tuple[Tensor, int]:
        path, label = self.samples[index]
        return read_rgb(path), label


def read_rgb(path: str) -> Tensor:
    """Decode an image file to uint8 ``[3, H, W]``; unreadable files raise naming the file."""
    try:
        with open(path, 'rb') as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
        return decode_image(data, mode=ImageReadMode.RGB)
    except (RuntimeError, OSError, ValueError) as err:
        raise ValueError(f"Cannot read image '{path}' ({err}); remove or replace the "
                         'file.') from err


@DATASETS.register_module()
class DigitsDataset(_ClassificationDataset):
    """scikit-learn's handwritten digits (1797 8x8 images, 10 classes) as tiny RGB images.

    Ships inside scikit-learn: the embedded demo needs no download. Images are scaled to
    ``size`` x ``size`` (bilinear) and replicated to three channels; the split is a fixed
    stratified shuffle by ``seed``.

    Args:
        split: ``'train'`` or ``'test'``.
        size: output side.
        test_fraction: share of each class held out for ``'test'``.
        seed: split seed.
        pipeline: transform configs.
    """

    #: 269 of the 1347 training images (~27 per class; the test split has 450).
    HOLDOUT_DEFAULT = {'fraction': 0.2}

    def __init__(self, split: str = 'train', size: int = 16, test_fraction: float = 0.25,
                 seed: int = 0, pipeline: Optional[Sequence[dict]] = None):
        from sklearn.datasets import load_digits
        if split not in ('train', 'test'):
            raise ValueError(f"DigitsDataset split must be 'train' or 'test', got '{split}'.")
        super().__init__([str(d) for d in range(10)], pipeline)
        digits = load_digits()
        rng = np.random.default_rng(seed)
        keep = []
        for label in range(10):
            idx = rng.permutation(np.flatnonzero(digits.target == label))
            n_test = int(round(len(idx) * test_fraction))
            keep.append(idx[:n_test] if split == 'test' else idx[n_test:])
        keep = np.sort(np.concatenate(keep))
        images = torch.from_numpy(digits.images[keep] / 16.0).float()[:, None]
        images = torch.nn.functional.interpolate(images, size=(size, size), mode='bilinear',
                                                 align_corners=False)
        self.images = (images.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
        self.labels = digits.target[keep].astype(np.int64)


@DATASETS.register_module()
class ClassSubsetDataset(KDDataset):
    """Training-set reduction (CAT-KD, Fig. 4/7): the first ``num_classes`` classes and,
    of each, the first ``int(count * fraction)`` images in dataset order.

    Args:
        dataset: config of the dataset to reduce (it must expose ``labels``).
        num_classes: keep classes ``0 .. num_classes - 1``.
        fraction: share of each kept class's images (500 per class on CIFAR-100).
        part: ``'kept'`` (the reduced set) or ``'left_out'``: the other images of the kept
            classes, the pool that ``validation.source='unused'`` holds its validation
            items out of (docs/validation.md).
    """

    #: The keyword that makes a config of this dataset give the items the reduction leaves
    #: out (:func:`kdbench.apis.validation.training_config`, ``source='unused'``).
    LEFT_OUT = dict(part='left_out')

    def __init__(self, dataset: dict, num_classes: int, fraction: float = 1.0,
                 part: str = 'kept'):
        self.dataset = DATASETS.build(dataset)
        labels = np.asarray(self.dataset.labels)
        if not 0 < fraction <= 1 or not 0 < num_classes <= len(self.dataset.metainfo['classes']):
            raise ValueError(f'ClassSubsetDataset: fraction must be in (0, 1] and num_classes in '
                             f"[1, {len(self.dataset.metainfo['classes'])}], got {fraction} and "
                             f'{num_classes}.')
        if part not in ('kept', 'left_out'):
            raise ValueError(f"ClassSubsetDataset: part must be 'kept' or 'left_out', got "
                             f'{part!r}.')
        keep = [np.flatnonzero(labels == c) for c in range(num_classes)]
        first = part == 'kept'
        self.indices = np.sort(np.concatenate(
            [idx[:int(len(idx) * fraction)] if first else idx[int(len(idx) * fraction):]
             for idx in keep]))
        if not len(self.indices):
            raise ValueError(f'ClassSubsetDataset: fraction={fraction} of classes '
                             f'0..{num_classes - 1} leaves no {part} image.')
        self.labels = labels[self.indices]
        self.metainfo = dict(self.dataset.metainfo, reduced_to_classes=num_classes,
                             reduced_fraction=fraction, reduced_part=part)

    def __len__(self) -> int:
        return len(self.indices)

    def item_classes(self) -> np.ndarray:
        """This part's labels (int64 ``[N]``): held-out splits are stratified."""
        return self.labels

    def check_sample(self, index: int) -> None:
        """The wrapped dataset's ``check_sample`` of this part's ``index``-th sample."""
        self.dataset.check_sample(int(self.indices[index]))

    def __getitem__(self, index: int) -> Dict:
        return self.dataset[int(self.indices[index])]
