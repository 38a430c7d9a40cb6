"""Random generator states saved in checkpoints, for exact resume."""
from __future__ import annotations

import random
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object
from mmengine.hooks import Hook

from kdbench.registry import HOOKS


def random_states() -> dict:
    """The Python, NumPy and torch (CPU and CUDA) generator states of this process."""
    state = dict(python=random.getstate(), numpy=np.random.get_state(),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_states(state: dict) -> None:
    """Restore what :func:`random_states` returned."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def same_random_states(first: dict, second: dict) -> bool:
    """Whether two :func:`random_states` results are the same states (nothing was drawn
    between them)."""
    if first.keys() != second.keys() or first['python'] != second['python']:
        return False
    numpy_a, numpy_b = first['numpy'], second['numpy']
    if numpy_a[0] != numpy_b[0] or not np.array_equal(numpy_a[1], numpy_b[1]) or \
            tuple(numpy_a[2:]) != tuple(numpy_b[2:]):
        return False
    if not torch.equal(first['torch'], second['torch']):
        return False
    return all(torch.equal(a, b) for a, b in zip(first.get('cuda', ()), second.get('cuda', ())))


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save every process's generator states in the checkpoints; restore them on resume.

    mmengine re-seeds a resumed run from the config's seed, so augmentations, dropout and
    dataloader worker seeds would differ from those of an uninterrupted run. With this hook
    (and ``--deterministic``), a run resumed from the checkpoint of epoch k draws exactly
    the random numbers the uninterrupted run drew after epoch k. Multi-process runs gather
    the states of all ranks at the end of each epoch (epoch checkpoints restore every
    rank; iteration checkpoints restore rank 0 only). Runs on a different number of
    processes start from the seed, as without this hook.

    Dataloader workers (persistent or not) draw from streams that depend only on the seed,
    the epoch, the rank and the worker id (:mod:`kdbench.hooks.worker_seed`; ``KDRunner``
    builds the train dataloader so), so they need no saving: a resumed epoch-based run's
    workers draw what the uninterrupted run's drew. The validation loader starts its
    workers from a generator of its own (``KDRunner``), so validating draws nothing from
    the training process's torch stream.
    """

    priority = 'LOW'          # before the CheckpointHook (VERY_LOW) in after_train_epoch
    KEY = 'random_states'

    def __init__(self):
        self._gathered: Optional[Dict[int, dict]] = None

    def after_train_epoch(self, runner) -> None:
        if runner.world_size > 1:
            self._gathered = dict(enumerate(all_gather_object(random_states())))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._gathered = None        # an iteration checkpoint: rank 0's own state

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._gathered or {runner.rank: random_states()}
        checkpoint[self.KEY] = dict(world_size=runner.world_size, states=states)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get(self.KEY)
        if saved and saved['world_size'] == runner.world_size and runner.rank in saved['states']:
            set_random_states(saved['states'][runner.rank])
