"""One member of a cohort: its config, runner, random stream and failure (docs/cohorts.md).

Every member draws from its own random stream, as if it ran alone: the process's Python,
NumPy and torch generator states are captured after the member's set-up and swapped in
around each of its steps (:meth:`CohortMember.active`). mmengine's components that log
to "the current" logger or message hub (``print_log(logger='current')``) reach the one
created last; :meth:`CohortMember.active` makes the member's own the current ones, so
its log holds what its run alone would log.
"""
from __future__ import annotations

import contextlib
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

from mmengine.config import Config
from mmengine.utils import ManagerMixin

from kdbench.hooks.random_state import random_states, set_random_states

from .cohort_runner import CohortError, CohortRunner, MemberEpochLoop


def make_current(instance: ManagerMixin) -> None:
    """Make ``instance`` what ``type(instance).get_current_instance()`` returns (mmengine
    returns the instance created last: the one last in its class's instance table)."""
    type(instance)._instance_dict.move_to_end(instance.instance_name)


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
        (the cohort as a whole cannot train), which is raised. Does nothing once failed."""
        if not self.ok:
            return None
        try:
            with self.active():
                return step(*args)
        except CohortError:
            raise
        except Exception as error:        # the other members go on
            self.error = error
            if self.runner is not None:
                self.runner.logger.error(f'Cohort member {self.name} failed:\n'
                                         f'{traceback.format_exc()}')
            return None
