"""The job a suite submits through submitit: one run trained by ``tools/train.py`` (or,
with several GPUs, ``tools/dist_train.sh``), or a cohort of runs by
``tools/train_cohort.py`` (``tools/dist_run.sh``), in a child process of the job.

The job is :class:`submitit.helpers.Checkpointable`: on the time-limit or preemption
signal it stops the child and is requeued with the same command, which resumes the run
(each member of a cohort) from its latest checkpoint (``--resume auto``: exact resume,
docs/reliability.md).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Union

from submitit.helpers import Checkpointable, DelayedSubmission

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Printed to the job's log when training fails; the runner shows the lines above it.
FAILED_MARK = 'kdbench: training exited with status'
STOP_TIMEOUT_S = 60
#: How long a job whose training was killed by a signal waits for the requeue signal.
SIGNAL_GRACE_S = 60
POLL_S = 0.5


def train_command(config: str, work_dir: str, gpus: int,
                  python: Optional[str] = None) -> List[str]:
    """The command that trains (or resumes) ``config`` in ``work_dir``: ``tools/train.py``
    for at most one GPU, else ``tools/dist_train.sh`` (torchrun, ``gpus`` processes, as
    on a machine of your own); always ``--resume auto``."""
    tail = ['--work-dir', work_dir, '--resume', 'auto']
    if gpus > 1:
        return ['bash', os.path.join(ROOT, 'tools', 'dist_train.sh'), config, str(gpus), *tail]
    return [python or sys.executable, os.path.join(ROOT, 'tools', 'train.py'), config, *tail]


def cohort_command(configs: Sequence[str], gpus: int,
                   python: Optional[str] = None) -> List[str]:
    """The command that trains (or resumes) the cohort of the member ``configs`` (each
    holding its work dir): ``tools/train_cohort.py`` for at most one GPU, else under
    torchrun (``tools/dist_run.sh``, ``gpus`` processes); always ``--resume auto``
    (finished members are left out)."""
    tail = [*configs, '--resume', 'auto']
    if gpus > 1:
        return ['bash', os.path.join(ROOT, 'tools', 'dist_run.sh'), str(gpus),
                'train_cohort.py', *tail]
    return [python or sys.executable, os.path.join(ROOT, 'tools', 'train_cohort.py'), *tail]


def _ignore_preemption_signal() -> None:      # in the child, before exec
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _stop(pid: int) -> None:
    """SIGTERM the child, SIGKILL it after :data:`STOP_TIMEOUT_S`; reaped with
    ``os.waitpid``: this runs in a signal handler, maybe inside ``Popen.poll``, whose lock
    ``Popen.wait`` would wait on forever."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return
            time.sleep(POLL_S)
    except (ProcessLookupError, ChildProcessError):      # already ended and reaped
        return


class TrainJob(Checkpointable):
    """Runs ``command`` in ``cwd`` (the submitting process's, so that the config's relative
    paths hold; its output goes to the job's log); raises when it fails, else writes its
    training time, summed over requeued attempts, to ``timing`` (``run_time.json``, as
    the suite's own runner). For a cohort ``timing`` is ``{run label: its
    run_time.json}``: each gets the time divided by the members, and the cohort's time and
    runs, also when a member failed (the others trained; exit status 1). Requeued by
    submitit (``checkpoint``) after stopping the child."""

    def __init__(self, command: List[str], name: str, cwd: str,
                 timing: Union[str, Dict[str, str]]):
        self.command, self.name, self.cwd = list(command), name, cwd
        self.timing = dict(timing) if isinstance(timing, dict) else {name: timing}
        self.seconds = 0.0                 # of the earlier attempts
        self._child: Optional[subprocess.Popen] = None
        self._started = 0.0

    def __call__(self) -> str:
        env = dict(os.environ, PYTHON=os.environ.get('PYTHON', sys.executable),
                   MASTER_PORT=str(_free_port()))      # several torchrun jobs on one node
        print(f'kdbench: {self.name}: {" ".join(self.command)}', flush=True)
        # The child ignores the preemption signal: this process checkpoints, stops it and
        # requeues (a child killed by the signal would look like a failed run).
        self._started = time.perf_counter()
        self._child = subprocess.Popen(self.command, cwd=self.cwd, env=env,
                                       preexec_fn=_ignore_preemption_signal)
        while (status := self._child.poll()) is None:   # not wait(): see checkpoint()
            time.sleep(POLL_S)
        self._child = None
        if status < 0:      # killed by a signal: on preemption Slurm's requeue signal follows
            print(f'kdbench: training killed by signal {-status}; waiting '
                  f'{SIGNAL_GRACE_S} s for a requeue', flush=True)
            time.sleep(SIGNAL_GRACE_S)
        elif len(self.timing) > 1:      # a cohort: its members that trained have their time
            self._write_times(self.seconds + time.perf_counter() - self._started)
        if status != 0:
            print(f'{FAILED_MARK} {status}', flush=True)
            raise RuntimeError(f'{self.name}: training exited with status {status}')
        if len(self.timing) == 1:
            self._write_times(self.seconds + time.perf_counter() - self._started)
        return self.name

    def _write_times(self, seconds: float) -> None:
        cohort = dict(cohort=dict(seconds=seconds, runs=list(self.timing))) \
            if len(self.timing) > 1 else {}
        for path in self.timing.values():
            with open(os.path.join(self.cwd, path), 'w') as f:
                json.dump(dict(seconds=seconds / len(self.timing), **cohort), f)

    def checkpoint(self) -> DelayedSubmission:
        """Stop the training child (its checkpoints stay); requeue the same command."""
        child = self._child
        if child is not None:
            self.seconds += time.perf_counter() - self._started
            _stop(child.pid)
        return DelayedSubmission(self)

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _child=None)
