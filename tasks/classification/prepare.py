"""CIFAR-100 in the layout torchvision's ``CIFAR100(root, download=True)`` leaves, which is
the one kdbench reads: ``<root>/cifar-100-python/{train,test,meta}`` (the official python
pickles; ``tools/prepare_cifar100.py``)."""
from __future__ import annotations

import os
from typing import Dict, List, Optional

from .datasets import CIFAR100

SPLIT_SIZES = dict(train=50000, test=10000)


class DownloadError(RuntimeError):
    """The CIFAR-100 archive could not be downloaded; the message says how to place it."""


def _missing_folders(path: str) -> List[str]:
    """``path`` and its parents that do not exist yet, deepest first."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def download_cifar100(root: str, url: Optional[str] = None) -> None:
    """Download and extract the official archive with torchvision (checks its md5), from
    ``url`` instead of torchvision's address when given. An archive already at
    ``<root>/cifar-100-python.tar.gz`` with the right md5 is extracted without a download.

    Raises:
        DownloadError: no download (offline, refused, wrong md5), naming the archive to
            place by hand; the folders and the partial file this call made are removed.
    """
    from torchvision.datasets import CIFAR100 as TorchvisionCIFAR100
    from torchvision.datasets.cifar import CIFAR100 as Official  # file, md5, url
    dataset_cls = TorchvisionCIFAR100
    if url is not None and url != Official.url:
        dataset_cls = type('CIFAR100', (Official,), dict(url=url))
    created = _missing_folders(root)
    archive = os.path.join(root, Official.filename)
    had_archive = os.path.exists(archive)
    try:
        dataset_cls(root, train=True, download=True)
    except (OSError, RuntimeError) as err:
        if not had_archive and os.path.isfile(archive):
            os.remove(archive)
        for folder in created:
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
        raise DownloadError(
            f'could not download CIFAR-100 from {url or Official.url} '
            f'({type(err).__name__}: {err}). Without network access: get '
            f'{Official.filename} (md5 {Official.tgz_md5}) from '
            'https://www.cs.toronto.edu/~kriz/cifar.html on another machine, then either put '
            f'it at {archive} and run this again with --download (it is checked and '
            f'extracted, not downloaded), or extract it into {root} so that '
            f'{os.path.join(root, "cifar-100-python")}/{{train,test,meta}} exist and run '
            'this without --download.') from err


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
