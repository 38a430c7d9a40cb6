"""Cohorts: several training configs with one teacher, in one pass over the data.

Each member is a full kdbench training config (a Distiller with its own methods, or a
plain task model: a baseline) with its own runner: model, optimizer, schedules, hooks,
work dir, checkpoints, validation and logs, as when it trains alone. The cohort builds the
members one after another (each seeded as its run alone), then per batch loads the data
once, and each member runs its iteration (hooks, ``train_step``) in turn in its own random
stream; the Distillers read the teacher's tensors from one :class:`SharedTeacher` that
runs once per batch. See docs/cohorts.md for the guarantees and what members share.
"""
from __future__ import annotations

import copy
from typing import Iterator, List, Optional, Sequence

from mmengine.config import Config
from mmengine.model import is_model_wrapper
from torch.utils.data import DataLoader

from kdbench.distill.distiller import Distiller
from kdbench.distill.shared_teacher import SharedTeacher
from kdbench.hooks.random_state import random_states, same_random_states
from kdbench.utils.distributed import prepare_distributed

from .cohort_check import check_cohort, member_name
from .cohort_member import CohortMember
from .cohort_runner import CohortError, CohortRunner
from .experiment import log_run_summary

_DRAWS = ('the training process\'s random generators (Python, NumPy or torch): with '
          'train_dataloader.num_workers=0 the transforms run in this process and draw from '
          'the stream each member\'s run alone draws its own numbers from, so the runs alone '
          'would not see the same batches. Set train_dataloader.num_workers>=1 (workers draw '
          'from per-(seed, epoch, rank, worker) streams, kdbench/hooks/worker_seed.py) for '
          'every member and for their runs alone.')


class Cohort:
    """The members of ``cfgs`` (checked by :func:`~kdbench.apis.cohort_check.check_cohort`),
    trained by :meth:`train`."""

    def __init__(self, cfgs: Sequence[Config]):
        check_cohort(cfgs)
        self.members = [CohortMember(member_name(cfg), cfg) for cfg in cfgs]
        #: The members' teacher (after the first Distiller member is built).
        self.teacher: Optional[SharedTeacher] = None
        self.loader: Optional[DataLoader] = None

    def train(self) -> List[CohortMember]:
        """Build and train every member; returns the members (failed ones have ``error``
        set, the others trained to the end). Raises :class:`CohortError` when the members
        cannot share their data as configured."""
        for member in self.members:
            member.run(self._build, member)
        self._check_positions()
        for member in self._running(self.members):
            member.run(member.runner.call_hook, 'before_train')
        while True:
            members = [m for m in self._running(self.members) if not m.loop.finished]
            if not members:
                break
            self._train_epoch(members)
        for member in self._running(self.members):
            member.run(self._finish, member)
        return self.members

    def _build(self, member: CohortMember) -> None:
        """What ``kdbench.apis.train`` does before ``runner.train()``, then the runner's
        training set-up; the Distiller's teacher becomes the shared one, and the train
        dataloader is the first member's."""
        prepare_distributed(member.cfg)
        member.runner = runner = CohortRunner.from_cfg(member.cfg)
        log_run_summary(runner, member.cfg)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if isinstance(model, Distiller):
            if self.teacher is None:
                self.teacher = SharedTeacher(model)
            else:
                self.teacher.add(model, member.name)
        runner.prepare_training(self.loader)
        if self.loader is None:
            if runner.loader_drew_random:
                raise CohortError(f'{member.name}: building the train dataloader drew from '
                                  + _DRAWS)
            self.loader = runner.train_dataloader

    def _check_positions(self) -> None:
        """Members (resumed or not) must start at the same epoch and iteration."""
        positions = {m.name: (m.loop.epoch, m.loop.iter) for m in self._running(self.members)}
        if len(set(positions.values())) > 1:
            listed = ', '.join(f'{name} at epoch {e} iteration {i}'
                               for name, (e, i) in positions.items())
            raise CohortError(f'Cohort members start at different points ({listed}): resume '
                              'each from checkpoints of the same epoch (--resume CKPT per '
                              'member), or train the lagging ones alone to that epoch first.')

    def _train_epoch(self, members: List[CohortMember]) -> None:
        iterators = [member.run(self._begin_epoch, member) for member in members]
        iterator = next((it for it in iterators if it is not None), None)
        if iterator is None and self.loader.generator is not None:
            iterator = _no_draw(iter, self.loader)
        for index, batch in enumerate(_batches(iterator)):
            running = self._running(members)
            if not running:
                break
            for position, member in enumerate(running):
                data = batch if position == len(running) - 1 else copy.deepcopy(batch)
                member.run(member.loop.run_iter, index, data)
            if self.teacher is not None:
                self.teacher.release()
        for member in self._running(members):
            member.run(member.loop.end_epoch)

    def _begin_epoch(self, member: CohortMember) -> Optional[Iterator]:
        """The member's epoch start; an iterator over the loader when starting one draws
        from the training process's torch stream (a loader without its own generator:
        ``num_workers=0``), so that each member draws that number as its run alone does."""
        member.loop.begin_epoch()
        if self.loader.generator is not None:
            return None
        if self.loader.num_workers:
            raise CohortError(f'{member.name}: the train dataloader has workers but no '
                              'generator of its own; build it with KDRunner.')
        return iter(self.loader)

    @staticmethod
    def _finish(member: CohortMember) -> None:
        member.runner.call_hook('after_train')
        member.runner.call_hook('after_run')

    @staticmethod
    def _running(members: Sequence[CohortMember]) -> List[CohortMember]:
        return [m for m in members if m.ok and m.runner is not None]


def _no_draw(step, *args):
    """``step(*args)``, raising :class:`CohortError` if it drew random numbers."""
    before = random_states()
    result = step(*args)
    if not same_random_states(before, random_states()):
        raise CohortError('Loading the train data drew from ' + _DRAWS)
    return result


def _batches(iterator: Optional[Iterator]) -> Iterator:
    """The batches of ``iterator``; each fetch is checked to draw no random numbers."""
    if iterator is None:
        return
    end = object()
    while True:
        batch = _no_draw(next, iterator, end)
        if batch is end:
            return
        yield batch


def train_cohort(cfgs: Sequence[Config]) -> List[CohortMember]:
    """Train the configs ``cfgs`` as one cohort; returns the members (see
    :meth:`Cohort.train`)."""
    return Cohort(cfgs).train()
