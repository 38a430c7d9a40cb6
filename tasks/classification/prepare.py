"""CIFAR-100 in the layout torchvision's ``CIFAR100(root, download=True)`` leaves, which is
the one kdbench reads: ``<root>/cifar-100-python/{train,test,meta}`` (the official python
pickles; ``tools/prepare_cifar100.py``)."""
from __future__ import annotations

import os
from typing import Dict, List

from .datasets import CIFAR100

SPLIT_SIZES = dict(train=50000, test=10000)


def download_cifar100(root: str) -> None:
    """Download and extract the official archive with torchvision (checks its md5)."""
    from torchvision.datasets import CIFAR100 as TorchvisionCIFAR100
    TorchvisionCIFAR100(root, train=True, download=True)


def modified_files(root: str) -> List[str]:
    """Files of ``<root>/cifar-100-python`` whose md5 differs from the official release's
    (torchvision's recorded checksums)."""
    from torchvision.datasets import CIFAR100 as TorchvisionCIFAR100
    from torchvision.datasets.utils import check_integrity
    ref = TorchvisionCIFAR100
    files = ref.train_list + ref.test_list + [[ref.meta['filename'], ref.meta['md5']]]
    folder = os.path.join(root, ref.base_folder)
    return [os.path.join(folder, name) for name, md5 in files
            if not check_integrity(os.path.join(folder, name), md5)]


def check_cifar100(root: str, full: bool = True) -> Dict[str, int]:
    """Read both splits as kdbench does; returns ``{split: images}``. With ``full``, the
    official sizes (50000 / 10000) are required."""
    sizes = {split: len(CIFAR100(root, split=split)) for split in SPLIT_SIZES}
    short = {s: n for s, n in sizes.items() if n != SPLIT_SIZES[s]}
    if full and short:
        raise ValueError(f"CIFAR-100 at '{root}' has {sizes} images, expected {SPLIT_SIZES}: "
                         'download it again (--download).')
    return sizes
