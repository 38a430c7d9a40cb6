"""Dataloader worker random streams as a function of (seed, epoch, rank, worker id).

mmengine seeds each worker once, when it starts, from ``seed + rank * num_workers +
worker_id``. Persistent workers then carry their streams across epochs, so a run resumed
at epoch k starts its workers at the streams of epoch 0, not those an uninterrupted run
reached (and non-persistent workers repeat the same augmentations every epoch). Here each
worker reseeds Python's, NumPy's and torch's generators at its first fetch of every epoch
from ``SeedSequence([seed, epoch, rank, worker_id])``: what a worker draws depends only on
those four numbers, whether or not the run was resumed. Pipelines keeping their own
generator (albumentations) reseed from ``torch.initial_seed()``, which changes with it.
"""
from __future__ import annotations

import multiprocessing
import random
from functools import partial
from typing import Callable, List, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info


def derived_seed(*numbers: int) -> int:
    """A 63-bit seed derived from non-negative integers, e.g. ``(seed, epoch, rank,
    worker_id)`` (NumPy ``SeedSequence``)."""
    state = np.random.SeedSequence(list(numbers)).generate_state(2)
    return (int(state[0]) << 32 | int(state[1])) & (2**63 - 1)


def seed_generators(seed: int) -> None:
    """Seed Python's, NumPy's (global) and torch's (CPU) generators of this process."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def reseeding_worker_init(worker_id: int, seed: int, rank: int, epoch,
                          previous: Optional[Callable[[int], None]] = None) -> None:
    """``worker_init_fn``: make the worker's dataset reseed at its first fetch of each epoch.

    ``epoch`` is a shared ``multiprocessing`` value the main process sets before the
    epoch's batches are requested. The worker's copy of the dataset gets a
    ``__getitems__`` (what torch's fetcher calls with a batch of indices) that reseeds
    when the epoch changed, then fetches as before.
    """
    if previous is not None:
        previous(worker_id)
    dataset = get_worker_info().dataset
    if isinstance(dataset, IterableDataset):
        return
    fetch_batch = getattr(dataset, '__getitems__', None)
    seen = [None]

    def getitems(indices: List[int]) -> list:
        if epoch.value != seen[0]:
            seen[0] = epoch.value
            seed_generators(derived_seed(seed, epoch.value, rank, worker_id))
        return fetch_batch(indices) if fetch_batch else [dataset[i] for i in indices]

    dataset.__getitems__ = getitems


class EpochWorkerSeeding:
    """Installs :func:`reseeding_worker_init` on a DataLoader and tells its workers the
    epoch; the loader's base seeds come from its own generator (seeded per epoch), so
    starting workers draws nothing from the main process's torch stream.

    Call :meth:`set_epoch` before the epoch's ``iter(loader)``.
    """

    def __init__(self, loader: DataLoader, seed: int, rank: int):
        self.loader, self.seed, self.rank = loader, seed, rank
        self.epoch = multiprocessing.RawValue('q', -1)
        loader.worker_init_fn = partial(reseeding_worker_init, seed=seed, rank=rank,
                                        epoch=self.epoch, previous=loader.worker_init_fn)
        loader.generator = torch.Generator()

    def set_epoch(self, epoch: int) -> None:
        self.epoch.value = epoch
        self.loader.generator.manual_seed(derived_seed(self.seed, epoch, self.rank))
