"""One member of a cohort: its config, runner, random stream and failure (docs/cohorts.md).

Every member draws from its own random stream, as if it ran alone: the process's Python,
NumPy and torch generator states are captured after the member's set-up and swapped in
around each of its steps (:meth:`CohortMember.active`). mmengine's components that log
to "the current" logger or message hub (``print_log(logger='current')``) reach the one
created last; :meth:`CohortMember.active` makes the member's own the current ones, so
its log holds what its run alone would log.

Under several processes every rank runs the same steps of the same members in the same
order, so each member's DDP collectives pair up; a member that fails on one rank only
(an exception after the step's collectives) must then fail on every rank:
:meth:`CohortMember.run` ends each step with one scalar all-reduce of "still ok", and the
ranks where it did not fail mark it failed with :class:`FailedOnAnotherRank`.
"""
from __future__ import annotations

import contextlib
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import torch
from mmengine import dist
from mmengine.config import Config
from mmengine.utils import ManagerMixin

from kdbench.hooks.random_state import random_states, set_random_states
from kdbench.hooks.stall_watchdog import StallWatchdogHook

from .cohort_runner import CohortError, CohortRunner, MemberEpochLoop


def make_current(instance: ManagerMixin) -> None:
    """Make ``instance`` what ``type(instance).get_current_instance()`` returns (mmengine
    returns the instance created last: the one last in its class's instance table)."""
    type(instance)._instance_dict.move_to_end(instance.instance_name)


class FailedOnAnotherRank(RuntimeError):
    """A member failed on another process of a distributed cohort (named in the message)."""


@dataclass
class CohortMember:
    """A member: ``name`` (its config file's stem, unique in the cohort) and ``cfg``; the
    cohort sets :attr:`runner` when it builds it, and :attr:`error` when it fails."""
    name: str
    cfg: Config
    runner: Optional[CohortRunner] = None
    error: Optional[BaseException] = None
    #: The member's generator states while another member runs (None before its build).
    states: Optional[dict] = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Not failed so far."""
        return self.error is None

    @property
    def loop(self) -> MemberEpochLoop:
        """The member's training loop (after its build)."""
        return self.runner.train_loop

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Run the block in this member's random stream, with its logger and message hub
        current; the stream's state is kept for the next block."""
        if self.runner is not None:
            for instance in (self.runner.logger, self.runner.message_hub,
                             self.runner.visualizer):
                make_current(instance)
        if self.states is not None:
            set_random_states(self.states)
        try:
            yield
        finally:
            self.states = random_states()

    def run(self, step: Callable[..., Any], *args: Any) -> Any:
        """``step(*args)`` in :meth:`active`; an exception marks the member failed (logged
        to its log when it has a runner) and gives ``None``, except a :class:`CohortError`
        (the cohort as a whole cannot train), which is raised. Does nothing once failed.
        When distributed, every rank must call it for the same steps: the ranks agree on
        the failure (:meth:`_agree`) before it returns."""
        if not self.ok:
            return None
        result = None
        try:
            with self.active():
                result = step(*args)
        except CohortError:
            raise
        except Exception as error:        # the other members go on
            self._fail(error, traceback.format_exc())
        self._agree()
        return result if self.ok else None

    def _fail(self, error: BaseException, details: str) -> None:
        self.error = error
        if self.runner is not None:
            self.runner.logger.error(f'Cohort member {self.name} failed:\n{details}')
            _stop_watchdogs(self.runner)

    def _agree(self) -> None:
        """Distributed: one all-reduce of "ok" over the ranks; when it failed somewhere,
        one gather of the errors, and the ranks where it did not fail mark it failed with
        a :class:`FailedOnAnotherRank` naming the ranks and their errors."""
        if dist.get_world_size() < 2:
            return
        flag = torch.tensor(1 if self.ok else 0, dtype=torch.int32)
        dist.all_reduce(flag, op='min')
        if flag.item():
            return
        mine = None if self.ok else f'{type(self.error).__name__}: {self.error}'
        errors = dist.all_gather_object(mine)
        if self.ok:
            failed = '; '.join(f'rank {rank}: {error}' for rank, error in enumerate(errors)
                               if error is not None)
            self._fail(FailedOnAnotherRank(f'{self.name} failed on {failed}'),
                       f'it failed on {failed}')


def _stop_watchdogs(runner: CohortRunner) -> None:
    """Stop the failed member's stall watchdog threads: the others' watchdogs watch the
    ranks from now on, and a live thread would keep the member's runner (and its DDP's
    process group) alive past ``finish_distributed``."""
    for hook in runner.hooks:
        if isinstance(hook, StallWatchdogHook) and hook.watchdog is not None:
            hook.watchdog.stop(finished=False)
            hook.watchdog = None
