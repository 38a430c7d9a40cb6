"""Stop a distributed run whose ranks stop making progress, naming the rank that stalled.

A rank that freezes (``kill -STOP``, a hung device or file system, swapping) leaves the
others waiting in a collective, silently, until the process-group timeout. With
``StallWatchdogHook`` (on by default in ``configs/_base_/default_runtime.py`` as
``default_hooks.watchdog``) every rank publishes two heartbeats in the process group's
key-value store (the launcher's TCPStore under torchrun, so a stopped rank does not block
the others' reads):

- *progress*: where the rank is (``in train iteration 58``), from the runner's iteration
  hooks (training, validation, test, checkpoint saving);
- *pulse*: a counter bumped by the rank's watchdog thread every ``interval`` seconds, which
  tells a frozen process (no pulse) from one waiting in a collective (pulse, no progress).

The hooks publish the progress at most once a second (fast iterations cost no store
round trip each), the thread publishes the latest progress and the pulse every
``interval`` seconds.

Each rank's daemon thread reads every rank's heartbeats. When one rank has made no
progress for ``stall_limit`` seconds, the thread logs which rank stalled (the one whose
pulse stopped, else those without progress), where every rank was and what to do, and ends
its own process with exit status 1; torchrun then stops the other ranks. Ages are measured
on each reader's own monotonic clock (no clock agreement between hosts is needed).
"""
from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from typing import Callable, Dict, List, Optional

import torch.distributed as dist
from mmengine.hooks import Hook

from kdbench.registry import HOOKS

LIMIT_KEY = 'default_hooks.watchdog.stall_limit'
KEY_PREFIX = 'kdbench_watchdog'
FINISHED = 'finished'
STALL_EXIT_STATUS = 1
#: Seconds between two publications of a rank's progress from its own hooks.
PUBLISH_SPACING = 1.0


class _Seen:
    """The last value read from one key and when (reader's monotonic clock) it changed."""

    def __init__(self, now: float):
        self.value: Optional[str] = None
        self.changed = now

    def update(self, value: Optional[str], now: float) -> float:
        """Record ``value`` (None: key not written yet); return seconds since it changed."""
        if value is not None and value != self.value:
            self.value, self.changed = value, now
        return now - self.changed


class StallWatchdog:
    """Heartbeats of one rank in ``store`` and a daemon thread watching every rank's.

    Args:
        store: a c10d store shared by the ranks (``set``, ``get``, ``check``).
        rank, world_size: this process's rank and the number of ranks.
        stall_limit: seconds without progress of some rank before the run is stopped.
        on_stall: called (in the watchdog thread) with the report; it is expected to end
            the process (the hook logs and calls ``os._exit``).
        interval: seconds between two publications/checks; default ``stall_limit / 10``
            capped to [0.5, 10].
    """

    def __init__(self, store, rank: int, world_size: int, stall_limit: float,
                 on_stall: Callable[[str], None], interval: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.store, self.rank, self.world_size = store, rank, world_size
        self.stall_limit = float(stall_limit)
        self.interval = interval or min(max(self.stall_limit / 10, 0.5), 10.0)
        self.on_stall, self.clock = on_stall, clock
        self._mine = (0, 'starting')          # (count, where), replaced whole by beat()
        self._published, self._published_at = -1, float('-inf')
        self._pulse_count = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        now = clock()
        self._seen_progress = [_Seen(now) for _ in range(world_size)]
        self._seen_pulse = [_Seen(now) for _ in range(world_size)]

    @staticmethod
    def key(rank: int, kind: str) -> str:
        return f'{KEY_PREFIX}/{rank}/{kind}'

    def beat(self, where: str) -> None:
        """Record this rank's progress (``where``: e.g. ``'in train iteration 58'``);
        published at once when the last publication is :data:`PUBLISH_SPACING` s old,
        else by the thread (at most one store round trip per second from here)."""
        self._mine = (self._mine[0] + 1, where)
        if self.clock() - self._published_at >= PUBLISH_SPACING:
            self._publish_progress()

    def _publish_progress(self) -> None:
        count, where = self._mine
        if count != self._published:
            self.store.set(self.key(self.rank, 'progress'), f'{count} {where}')
            self._published, self._published_at = count, self.clock()

    def publish(self) -> None:
        """Publish the progress (when it changed) and a pulse: this process is alive."""
        self._publish_progress()
        self._pulse_count += 1
        self.store.set(self.key(self.rank, 'pulse'), str(self._pulse_count))

    def _read(self, key: str) -> Optional[str]:
        return self.store.get(key).decode() if self.store.check([key]) else None

    def check(self) -> Optional[str]:
        """One look at every rank's heartbeats: the stall report, or None if all is well."""
        now = self.clock()
        where: Dict[int, str] = {}
        idle: Dict[int, float] = {}
        silent: Dict[int, float] = {}
        for rank in range(self.world_size):
            progress = self._read(self.key(rank, 'progress'))
            pulse = self._read(self.key(rank, 'pulse'))
            idle[rank] = self._seen_progress[rank].update(progress, now)
            silent[rank] = self._seen_pulse[rank].update(pulse, now)
            where[rank] = (progress.split(' ', 1)[1] if progress else 'not started')
        stalled = [r for r in idle if idle[r] > self.stall_limit and where[r] != FINISHED]
        if not stalled:
            return None
        frozen = [r for r in stalled if silent[r] > 3 * self.interval]
        return self.report(frozen or stalled, bool(frozen), where, idle, silent)

    def report(self, culprits: List[int], frozen: bool, where: Dict[int, str],
               idle: Dict[int, float], silent: Dict[int, float]) -> str:
        """The message naming the stalled rank(s), where each rank was, and what to do."""
        names = ', '.join(f'rank {r}' for r in culprits)
        what = ('stopped responding (its process is stopped, frozen or swapped out)'
                if frozen else 'made no progress (alive: waiting in a collective or a '
                'slow operation)')
        lines = [f'Distributed run stalled: {names} {what} for more than '
                 f'{self.stall_limit:g} s ({LIMIT_KEY}). Rank {self.rank} stops the run.',
                 'Last progress each rank reported:']
        for rank in sorted(where):
            state = ('no heartbeat' if silent[rank] > 3 * self.interval else 'alive')
            lines.append(f'  rank {rank}: {where[rank]} ({idle[rank]:.0f} s ago; {state})')
        lines.append(f'Check the process and host of {names} (a stopped or hung process, '
                     'a hung device or file system), then continue with --resume from the '
                     f'last checkpoint. A longer limit: --cfg-options {LIMIT_KEY}=SECONDS '
                     '(0 switches the watchdog off).')
        return '\n'.join(lines)

    def start(self) -> None:
        """Start the daemon thread (publish, check, repeat every ``interval`` s)."""
        self.publish()
        self._thread = threading.Thread(target=self._watch, name='kdbench-stall-watchdog',
                                        daemon=True)
        self._thread.start()
        atexit.register(self.stop, finished=False)    # also when the run raised

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish()
                message = self.check()
            except Exception as error:           # the store itself is gone or hangs
                if self._stop.is_set():
                    return
                message = (f'Distributed run stalled: rank {self.rank} cannot reach the '
                           f'process group\'s store ({type(error).__name__}: {error}); '
                           'under torchrun the store lives in the launcher, under Slurm '
                           f'in rank 0. Rank {self.rank} stops the run.')
            if message is not None:
                self.on_stall(message)
                return

    def stop(self, finished: bool = True) -> None:
        """Stop and join the thread; with ``finished`` tell the others this rank is done
        (a finished rank never counts as stalled). Also run at interpreter exit: a daemon
        thread still inside a store call when Python finalises would abort the process."""
        self._stop.set()
        if self._thread is not None:
            atexit.unregister(self.stop)
            self._thread.join(timeout=max(2 * self.interval, 5.0))
            self._thread = None
        if finished:
            self.beat(FINISHED)
            self.publish()


def stop_process(message: str, logger: logging.Logger) -> None:
    """Log ``message`` as an error, flush the logs and end this process (status 1)."""
    logger.error(message)
    for handler in logger.handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(STALL_EXIT_STATUS)


@HOOKS.register_module()
class StallWatchdogHook(Hook):
    """Stops every rank of a distributed run when one stops making progress.

    Args:
        stall_limit: seconds a rank may go without progress (an iteration of training,
            validation or test, a checkpoint save) before the run is stopped; 0 or None
            switches the watchdog off. Slow first iterations and validations must fit in
            it. Inactive in 1-process runs.
    """

    priority = 'VERY_HIGH'

    def __init__(self, stall_limit: Optional[float] = 1200):
        if stall_limit is not None and (isinstance(stall_limit, bool) or
                                        not isinstance(stall_limit, (int, float)) or
                                        stall_limit < 0):
            raise ValueError(f'{LIMIT_KEY} must be a number of seconds >= 0 (0 or None: no '
                             f'watchdog), got {stall_limit!r}.')
        self.stall_limit = stall_limit
        self.watchdog: Optional[StallWatchdog] = None
        self._trained = 0        # train iterations done (runner.iter lags by one in hooks)

    def before_run(self, runner) -> None:
        self._trained = runner.iter
        if not self.stall_limit or not dist.is_initialized() or dist.get_world_size() < 2:
            return
        store = dist.distributed_c10d._get_default_store()
        self.watchdog = StallWatchdog(
            store, dist.get_rank(), dist.get_world_size(), self.stall_limit,
            on_stall=lambda message: stop_process(message, runner.logger))
        self.watchdog.start()

    def _beat(self, where: str) -> None:
        if self.watchdog is not None:
            self.watchdog.beat(where)

    def before_train(self, runner) -> None:
        self._trained = runner.iter                   # after a resume

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._beat(f'in train iteration {self._trained + 1}')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._trained += 1
        self._beat(f'finished train iteration {self._trained}')

    def before_val_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._beat(f'in val iteration {batch_idx + 1} (after train iteration '
                   f'{self._trained})')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._beat(f'finished validation (after train iteration {self._trained})')

    def before_test_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._beat(f'in test iteration {batch_idx + 1}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._beat(f'saving a checkpoint (after train iteration {self._trained})')

    def after_run(self, runner) -> None:
        if self.watchdog is not None:
            self.watchdog.stop()
            self.watchdog = None
