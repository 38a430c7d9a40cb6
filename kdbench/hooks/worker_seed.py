"""Dataloader worker random streams as a function of (seed, epoch, rank, worker id).

mmengine seeds each worker once, when it starts, from ``seed + rank * num_workers +
worker_id``. Persistent workers then carry their streams across epochs, so a run resumed
at epoch k starts its workers at the streams of epoch 0, not those an uninterrupted run
reached (and non-persistent workers repeat the same augmentations every epoch). Here each
worker reseeds Python's, NumPy's and torch's generators at its first fetch of every epoch
from ``SeedSequence([seed, epoch, rank, worker_id])``: what a worker draws depends only on
those four numbers, whether or not the run was resumed. Pipelines keeping their own
generator (albumentations) reseed from ``torch.initial_seed()``, which changes with it.

The epoch reaches the workers with the indices they fetch: :func:`epoch_seeded_loader`
turns a dataloader config into one whose sampler is an :class:`EpochSampler` (it yields
``(epoch, index)`` keys, the epoch being the one mmengine's ``set_epoch`` convention gives
the sampler: ``DistSamplerSeedHook`` before each epoch, the iteration loop at each restart)
and whose dataset is an :class:`EpochSeededDataset` (it takes those keys, reseeds a worker
when the epoch changes, then fetches from the wrapped dataset). The loader also gets a
``generator`` of its own for the workers' base seeds, so starting workers draws nothing
from the main process's torch stream. :class:`~kdbench.apis.runner.KDRunner` builds its
train dataloader from such a config whenever it has workers.
"""
from __future__ import annotations

import random
from typing import Iterator, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, get_worker_info

from kdbench.registry import DATA_SAMPLERS, DATASETS

#: What :class:`EpochSampler` yields and :class:`EpochSeededDataset` takes.
EpochIndex = Tuple[int, int]


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


class EpochSeededDataset(Dataset):
    """A map-style dataset fetched by ``(epoch, index)`` keys; in a dataloader worker, the
    first fetch of each epoch reseeds the worker's generators from ``(seed, epoch, rank,
    worker id)`` before ``dataset[index]`` is loaded. Outside workers nothing is reseeded.

    Args:
        dataset: the wrapped dataset, or its config (built in ``DATASETS``, and
            ``full_init()`` called where it has one, as mmengine's dataloader build does).
        seed: the run's seed.
        rank: this process's rank.
    """

    def __init__(self, dataset: Union[dict, Dataset], seed: int, rank: int):
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
            if hasattr(dataset, 'full_init'):
                dataset.full_init()
        self.dataset, self.seed, self.rank = dataset, seed, rank
        self._epoch = None           # the epoch this worker's copy was last reseeded for

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's ``metainfo`` (AttributeError where it has none)."""
        return self.dataset.metainfo

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: EpochIndex):
        epoch, index = key
        self._enter_epoch(epoch)
        return self.dataset[index]

    def __getitems__(self, keys: Sequence[EpochIndex]) -> list:
        """A batch (what torch's fetcher asks for): the wrapped dataset's
        ``__getitems__`` where it has one, else one ``dataset[index]`` per key."""
        self._enter_epoch(keys[0][0])          # a batch belongs to one epoch
        indices = [index for _, index in keys]
        fetch_batch = getattr(self.dataset, '__getitems__', None)
        return fetch_batch(indices) if fetch_batch else [self.dataset[i] for i in indices]

    def _enter_epoch(self, epoch: int) -> None:
        worker = get_worker_info()
        if worker is not None and epoch != self._epoch:
            self._epoch = epoch
            seed_generators(derived_seed(self.seed, epoch, self.rank, worker.id))


class EpochSampler(Sampler):
    """Yields ``(epoch, index)`` for every index of the wrapped sampler, ``epoch`` being
    the last one given to :meth:`set_epoch` (0 before), which it passes on.

    Args:
        sampler: the wrapped sampler, or its config (built in ``DATA_SAMPLERS`` with
            ``dataset`` and ``seed``, what mmengine's dataloader build gives a sampler).
        dataset: the loader's dataset (an :class:`EpochSeededDataset` is unwrapped).
        seed: the sampler seed.
    """

    def __init__(self, sampler: Union[dict, Sampler], dataset=None, seed=None):
        if isinstance(sampler, dict):
            if isinstance(dataset, EpochSeededDataset):
                dataset = dataset.dataset
            sampler = DATA_SAMPLERS.build(sampler, default_args=dict(dataset=dataset,
                                                                     seed=seed))
        self.sampler, self.epoch = sampler, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, 'set_epoch'):
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[EpochIndex]:
        epoch = self.epoch
        return ((epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def epoch_seeded_loader(loader: dict, seed: int, rank: int) -> dict:
    """The dataloader config ``loader`` (mmengine's ``Runner.build_dataloader`` format)
    with per-epoch worker streams: its ``dataset`` wrapped in an
    :class:`EpochSeededDataset`, its ``sampler`` in an :class:`EpochSampler`, and a
    ``generator`` (seeded from ``seed`` and ``rank``) for the workers' base seeds.
    Configs without workers, and those already converted, are returned as they are."""
    dataset = loader.get('dataset')
    if not loader.get('num_workers') or _is_epoch_seeded(dataset):
        return loader
    return dict(loader,
                dataset=dict(type=EpochSeededDataset, dataset=dataset, seed=seed, rank=rank),
                sampler=dict(type=EpochSampler, sampler=loader.get('sampler')),
                generator=torch.Generator().manual_seed(derived_seed(seed, rank)))


def worker_generator(loader: dict, seed: int) -> dict:
    """The dataloader config ``loader`` with a ``generator`` (seeded from ``seed``) for
    its workers' base seeds, so that starting them draws nothing from the main process's
    torch stream; configs without workers, or with a generator, are returned as they are."""
    if not loader.get('num_workers') or loader.get('generator') is not None:
        return loader
    return dict(loader, generator=torch.Generator().manual_seed(seed))


def _is_epoch_seeded(dataset) -> bool:
    return isinstance(dataset, EpochSeededDataset) or (
        isinstance(dataset, dict) and dataset.get('type') is EpochSeededDataset)
