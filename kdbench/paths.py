"""Where kdbench finds its shipped files: the checkout it runs from.

``configs/`` and ``tools/`` are not part of the installed package (``setup.cfg`` packages
``kdbench`` and ``tasks`` only), so they are found in the checkout that holds the imported
``kdbench`` package: its parent folder. A config named by its path in the checkout
(``configs/cls/kd_resnet32x4_resnet8x4_cifar100.py``) is the file at that path relative to
the working directory when there is one, else the one in the checkout. kdbench installed
without its checkout (a wheel in ``site-packages``) has no ``configs/`` there:
:func:`repo_root` raises :class:`CheckoutNotFoundError`, saying what to do.
"""
from __future__ import annotations

import os

#: The folder of the imported ``kdbench`` package.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class CheckoutNotFoundError(FileNotFoundError):
    """kdbench runs without the checkout holding ``configs/`` (installed on its own)."""


def repo_root() -> str:
    """The kdbench checkout this process runs from (the folder above the package).

    Raises:
        CheckoutNotFoundError: no ``configs/`` folder next to the package.
    """
    root = os.path.dirname(PACKAGE_DIR)
    if not os.path.isdir(os.path.join(root, 'configs')):
        raise CheckoutNotFoundError(
            f"kdbench's shipped configs are not next to its package: no '"
            f"{os.path.join(root, 'configs')}' folder (kdbench is installed without its "
            'checkout; configs/ and tools/ are not packaged). Run kdbench from a clone of '
            'its repository (pip install -e CLONE, or PYTHONPATH=CLONE), or pass the path '
            'of a config file that exists.')
    return root


def config_path(name: str) -> str:
    """The file of config ``name``: ``name`` itself when it is absolute or a file relative
    to the working directory, else ``name`` inside :func:`repo_root` (whether that file
    exists is the caller's check).

    Raises:
        CheckoutNotFoundError: ``name`` is not a file here and there is no checkout.
    """
    if os.path.isabs(name) or os.path.isfile(name):
        return name
    return os.path.join(repo_root(), name)
