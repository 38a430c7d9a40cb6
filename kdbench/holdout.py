"""A validation part held out of a training set (docs/validation.md).

:func:`holdout_indices` splits ``range(N)`` into a held-out part and the rest,
deterministically from a seed: stratified per class when the dataset tells each item's
class (the dataset contract's ``item_classes``, :mod:`kdbench.data_contract`), by item
(an image, a scene) otherwise. :class:`HoldoutSplit` is the registered dataset wrapper
that gives one of the two parts.

Stratified sizes: the held-out total ``S`` (``size``, or ``round(N * fraction)``) is
shared out in proportion to the classes' counts by the largest-remainder rule: class ``c``
with ``n_c`` items gets ``floor(S * n_c / N)``, and the items left over go one each to the
classes with the largest remainders (ties: the lower class index), so the total is
exactly ``S``. A class whose share rounds to 0 has no held-out item; a class whose share
would take all its items is an error (training would lose the class).
"""
from __future__ import annotations

from typing import Dict, Iterator, Optional, Tuple, Union

import numpy as np
from torch.utils.data import Dataset

from kdbench.data_contract import (KDDataset, holdout_default, item_classes, sample_checker,
                                   sample_files)
from kdbench.registry import DATASETS

#: The two parts of a split: the held-out validation items and the training rest.
PARTS = ('val', 'train')


def holdout_size(total: int, size: Optional[int] = None,
                 fraction: Optional[float] = None) -> int:
    """Items to hold out of ``total``: ``size``, else ``round(total * fraction)``; a
    ``ValueError`` naming ``validation.size``/``validation.fraction`` when the held-out
    part would be empty or hold every item."""
    if (size is None) == (fraction is None):
        raise ValueError('validation: give one of size (items) or fraction (share of the '
                         f'training set), got size={size}, fraction={fraction}.')
    count = size if size is not None else int(round(total * fraction))
    given = f'validation.size={size}' if size is not None else \
        f'validation.fraction={fraction} ({count} items)'
    if count < 1:
        raise ValueError(f'{given} of a training set of {total} items leaves the validation '
                         'part empty; hold out at least one item.')
    if count >= total:
        raise ValueError(f'{given} holds out the whole training set of {total} items (or '
                         'more), leaving nothing to train on; choose a smaller size or '
                         'fraction.')
    return count


def class_shares(counts: np.ndarray, count: int) -> np.ndarray:
    """Items to hold out of each class (``counts``: items per class), in proportion to
    ``counts`` and summing to ``count``, by the largest-remainder rule (module docstring)."""
    exact = counts * count / counts.sum()
    shares = np.floor(exact).astype(np.int64)
    left = count - int(shares.sum())
    order = np.argsort(-(exact - shares), kind='stable')   # largest remainder, lower index
    shares[order[:left]] += 1
    return shares


def holdout_indices(total: int, seed: int, size: Optional[int] = None,
                    fraction: Optional[float] = None,
                    classes: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """``(held out, rest)``: sorted int64 indices into ``range(total)``, disjoint and
    together covering it, chosen by ``np.random.default_rng(seed)``; stratified by
    ``classes`` (int ``[total]``, the class of each item) when given, else by item."""
    count = holdout_size(total, size, fraction)
    rng = np.random.default_rng(seed)
    if classes is None:
        held = rng.permutation(total)[:count]
    else:
        classes = np.asarray(classes)
        if classes.shape != (total,):
            raise ValueError(f'item_classes() gave {classes.shape} classes for {total} items; '
                             'it must give one class per item.')
        values, inverse = np.unique(classes, return_inverse=True)
        counts = np.bincount(inverse, minlength=len(values))
        shares = class_shares(counts, count)
        full = np.flatnonzero(shares >= counts)
        if len(full):
            raise ValueError(
                f'validation holds out all {counts[full[0]]} items of class '
                f'{values[full[0]]} (stratified: each class gives its share of the '
                f'{count} held-out items), leaving training without it; choose a smaller '
                'validation.size/fraction.')
        held = np.concatenate([rng.permutation(np.flatnonzero(inverse == c))[:shares[c]]
                               for c in range(len(values))])
    mask = np.zeros(total, dtype=bool)
    mask[held] = True
    return np.flatnonzero(mask), np.flatnonzero(~mask)


@DATASETS.register_module()
class HoldoutSplit(KDDataset):
    """One part of a training set split by :func:`holdout_indices`.

    Args:
        dataset: the training set, or its config (built here).
        part: ``'val'`` (the held-out items) or ``'train'`` (the rest).
        size: items to hold out; or
        fraction: share of the items to hold out. Neither: the wrapped dataset's
            ``HOLDOUT_DEFAULT`` (the dataset contract).
        seed: split seed, independent of the training seed.

    Samples are the wrapped dataset's, in its order; ``labels`` (when it has them) and
    ``metainfo`` follow, with ``holdout=dict(part, size, seed)`` added to ``metainfo``.
    """

    def __init__(self, dataset: Union[dict, Dataset], part: str,
                 size: Optional[int] = None, fraction: Optional[float] = None,
                 seed: int = 0):
        if part not in PARTS:
            raise ValueError(f"HoldoutSplit part must be one of {list(PARTS)}, got '{part}'.")
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        if size is None and fraction is None:
            default = holdout_default(type(self.dataset))
            size, fraction = default.get('size'), default.get('fraction')
        held, rest = holdout_indices(len(self.dataset), seed, size, fraction,
                                     item_classes(self.dataset))
        self.indices = held if part == 'val' else rest
        labels = getattr(self.dataset, 'labels', None)
        if labels is not None and len(labels) == len(self.dataset):
            self.labels = np.asarray(labels)[self.indices]
        self.metainfo: Dict = dict(getattr(self.dataset, 'metainfo', None) or {},
                                   holdout=dict(part=part, size=len(held), seed=seed))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[int(self.indices[index])]

    def item_classes(self) -> Optional[np.ndarray]:
        """The wrapped dataset's classes of the items of this part."""
        classes = item_classes(self.dataset)
        return None if classes is None else np.asarray(classes)[self.indices]

    def sample_files(self) -> Iterator[str]:
        """The wrapped dataset's files (all of them: a superset of this part's)."""
        return sample_files(self.dataset)

    def check_sample(self, index: int) -> None:
        """The wrapped dataset's check of the ``index``-th item of this part."""
        sample_checker(self.dataset)(int(self.indices[index]))
