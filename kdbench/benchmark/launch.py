"""Running a suite through submitit (``tools/benchmark.py SUITE --launcher slurm|local``).

Every unfinished run and seed becomes one job (:class:`~.train_job.TrainJob`): teachers
first, a student once its teacher's final checkpoint exists; the jobs that are ready
together are submitted together (a Slurm job array). With ``cohort``, the student runs
ready together are grouped as ``tools/benchmark.py --cohort`` groups them
(:func:`~.cohorts.group_jobs`) and each group of several is one job training them as a
cohort (``tools/train_cohort.py --resume auto``); its runs are tracked one by one (a
member that failed gets its ``failure.json``, the others are done). The runner polls
until every run is done or failed, prints a status table when a state changes (and every
``status_every_s``), writes ``results.md``/``results.csv`` whenever a run ends, and keeps
the job ids in ``<work dir>/submitit/jobs.json`` (a cohort's id under each of its runs):
started again, it re-attaches to the jobs that still run instead of submitting them
twice. Job folders (logs, pickles):
``<work dir>/submitit/<job id>``. A failed job is recorded in the run's ``failure.json``
(with its log's last lines and the log's path) and is resubmitted only with
``retry_failed``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import submitit
from mmengine.config import Config
from submitit.local.local import LocalJob

from .cohorts import Job, group_jobs
from .suite import FAILURE_FILE, Run, Suite
from .train_job import FAILED_MARK, TrainJob, cohort_command, train_command

LAUNCHERS = ('slurm', 'local')
JOBS_FILE = 'jobs.json'
TAIL_LINES = 15
#: Times a job may hit its time limit and be requeued (preemptions do not count).
MAX_TIMEOUTS = 20

Key = Tuple[str, int]      # (run ident, seed)
#: A run of a job: (run, seed, its config when already built, else None).
Member = Tuple[Run, int, Optional[Config]]


@dataclass
class LaunchOptions:
    """How jobs are submitted. ``gpus``: per job (more than one: torchrun in the job);
    ``max_parallel``: jobs at once (``None``: no limit of ours; Slurm arrays keep theirs);
    ``slurm``: extra ``#SBATCH`` parameters (``setup``: shell lines run before the job);
    ``cohort``: student runs that can share a pass over the data are one job."""
    launcher: str
    gpus: int = 1
    partition: Optional[str] = None
    timeout_min: int = 24 * 60
    max_parallel: Optional[int] = None
    slurm: Dict[str, Any] = field(default_factory=dict)
    retry_failed: bool = False
    cohort: bool = False
    poll_s: float = 5.0
    status_every_s: float = 300.0


def make_executor(options: LaunchOptions, folder: str) -> submitit.Executor:
    """A submitit executor for ``options`` whose job folders are ``folder/<job id>``."""
    if options.launcher not in LAUNCHERS:
        raise ValueError(f'--launcher must be one of {LAUNCHERS}, got {options.launcher!r}.')
    path = os.path.join(folder, '%j')
    common = dict(timeout_min=options.timeout_min, stderr_to_stdout=True)
    if options.launcher == 'local':
        executor = submitit.LocalExecutor(path, max_num_timeout=MAX_TIMEOUTS)
        executor.update_parameters(gpus_per_node=options.gpus, tasks_per_node=1, **common)
        return executor
    try:
        executor = submitit.SlurmExecutor(path, max_num_timeout=MAX_TIMEOUTS)
    except RuntimeError as err:          # no srun: not on a Slurm cluster
        raise RuntimeError(f'--launcher slurm: {err} Submit from a Slurm login node, or use '
                           '--launcher local or --commands.') from err
    executor.update_parameters(**slurm_parameters(options))
    return executor


def slurm_parameters(options: LaunchOptions) -> Dict[str, Any]:
    """``SlurmExecutor`` parameters: one task per job (more GPUs: torchrun in the job),
    stdout and stderr in one log, ``options.slurm`` as extra ``#SBATCH`` lines."""
    extra = dict(options.slurm)
    setup = extra.pop('setup', None)
    return dict(time=options.timeout_min, stderr_to_stdout=True, partition=options.partition,
                gpus_per_node=options.gpus or None, ntasks_per_node=1, job_name='kdbench',
                array_parallelism=options.max_parallel or 256, additional_parameters=extra,
                **(dict(setup=list(setup)) if setup else {}))


class JobRecords:
    """``jobs.json``: the job (launcher, id, folder) last submitted for each run and seed."""

    def __init__(self, path: str):
        self.path = path
        self.entries: Dict[str, dict] = {}
        if os.path.isfile(path):
            with open(path) as f:
                self.entries = json.load(f)

    @staticmethod
    def name(key: Key) -> str:
        return f'{key[0]}/seed_{key[1]}'

    def get(self, key: Key) -> Optional[dict]:
        return self.entries.get(self.name(key))

    def put(self, key: Key, launcher: str, job: submitit.Job) -> None:
        self.entries[self.name(key)] = dict(launcher=launcher, job_id=job.job_id,
                                            folder=str(job.paths.folder))
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path + '.tmp', 'w') as f:
            json.dump(self.entries, f, indent=1)
        os.replace(self.path + '.tmp', self.path)


def attach(entry: dict) -> submitit.Job:
    """The job of a ``jobs.json`` entry (submitted by an earlier runner)."""
    job_class = LocalJob if entry['launcher'] == 'local' else submitit.SlurmJob
    return job_class(folder=entry['folder'], job_id=entry['job_id'])


def job_alive(job: submitit.Job) -> bool:
    """Whether the job is queued or running. A local job re-attached from ``jobs.json``
    has no process handle: its controller process is looked up by id."""
    if isinstance(job, LocalJob):
        state = job.state
        if state == 'NO PROCESS AND NO RESULT':
            return _local_controller_alive(job.job_id)
        return state == 'RUNNING'
    return not job.done()


def _local_controller_alive(pid: str) -> bool:
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            command = f.read()
        with open(f'/proc/{pid}/stat') as f:
            zombie = f.read().rsplit(')', 1)[1].split()[0] == 'Z'
    except OSError:
        return False
    return b'submitit.local._local' in command and not zombie


def log_tail(log: str, lines: int = TAIL_LINES) -> List[str]:
    """The last lines of a job's log before :data:`FAILED_MARK` (the training's own
    error, not submitit's report of it); the last lines when the job was killed."""
    if not os.path.isfile(log):
        return []
    with open(log, errors='replace') as f:
        text = f.read().splitlines()
    marks = [i for i, line in enumerate(text) if line.startswith(FAILED_MARK)]
    end = marks[-1] + 1 if marks else len(text)
    return [line for line in text[:end] if line.strip()][-lines:]


def member_failure(log: str, member: str) -> Optional[str]:
    """The line ``tools/train_cohort.py`` printed for a failed ``member`` in a job's log
    (``<member>: FAILED: <error> (<work dir>)``), if any."""
    if not os.path.isfile(log):
        return None
    with open(log, errors='replace') as f:
        lines = [line for line in f.read().splitlines()
                 if line.startswith(f'{member}: FAILED: ')]
    return lines[-1] if lines else None


class SuiteLauncher:
    """Submits, tracks, retries and collects one suite's jobs (see the module docstring)."""

    def __init__(self, suite: Suite, options: LaunchOptions, log: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.monotonic):
        self.suite, self.options, self.log, self.clock = suite, options, log, clock
        self.folder = os.path.join(suite.work_dir, 'submitit')
        self.records = JobRecords(os.path.join(self.folder, JOBS_FILE))
        self.jobs: Dict[Key, submitit.Job] = {}
        for run, seed in self._keys():
            entry = self.records.get((run.ident, seed))
            if entry is not None:
                self.jobs[(run.ident, seed)] = attach(entry)
        self.retry: set = set()
        self._executor: Optional[submitit.Executor] = None
        self._shown: Optional[Dict[Key, str]] = None
        self._shown_at = 0.0

    def _keys(self) -> List[Tuple[Run, int]]:
        return [(run, seed) for run in self.suite.runs for seed in run.seeds]

    # ---------------------------------------------------------------------- the loop
    def run(self, sleep: Callable[[float], None] = time.sleep) -> Dict[Key, str]:
        """Submit and track until no job runs and none can be submitted; returns each
        run's final state ('done' or 'failed')."""
        attached = [k for k, job in self.jobs.items() if job_alive(job)]
        if attached:
            self.log(f're-attached to {len(attached)} job(s) still queued or running: '
                     + ', '.join(self.jobs[k].job_id for k in attached))
        states = self.states()
        if self.options.retry_failed:
            self.retry = {key for key, state in states.items() if state == 'failed'}
            states = self.states()
        ended = {k for k, s in states.items() if s in ('done', 'failed')}
        while True:
            if self._submit([k for k, s in states.items() if s == 'ready'], states):
                states = self.states()
            self._show(states)
            now_ended = {k for k, s in states.items() if s in ('done', 'failed')}
            if now_ended != ended:
                self.suite.report(self.suite.collect())
                ended = now_ended
            if not any(s in ('ready', 'queued', 'running') for s in states.values()):
                return states
            sleep(self.options.poll_s)
            states = self.states()

    def states(self) -> Dict[Key, str]:
        """Each run's state: 'queued' / 'running' (a live job), 'done', 'failed', 'waiting'
        (for its teacher) or 'ready' (to submit). A job that ended without finishing its
        run is recorded as failed here."""
        states: Dict[Key, str] = {}
        for run, seed in self._keys():
            states[(run.ident, seed)] = self._state(run, seed, states)
        return states

    def _state(self, run: Run, seed: int, states: Dict[Key, str]) -> str:
        key = (run.ident, seed)
        job = self.jobs.get(key)
        if job is not None and job_alive(job):
            return 'queued' if getattr(job, 'state', '') == 'PENDING' else 'running'
        status = self.suite.status(run, seed)
        if status == 'done':
            return 'done'
        if key not in self.retry:
            if job is not None and self._failure_job(run, seed) != job.job_id:
                self._record_failure(run, seed, job)
                return 'failed'
            if status == 'failed':
                return 'failed'
        if run.depends is not None:
            teacher = states[(run.depends.ident, run.depends.seeds[0])]
            if teacher == 'failed':
                self.retry.discard(key)
                self._write_failure(run, seed, f'teacher run {run.depends.name!r} did not '
                                    'finish', [], '')
                return 'failed'
            if teacher != 'done':
                return 'waiting'
        return 'ready'

    # -------------------------------------------------------------------- submitting
    def _submit(self, keys: List[Key], states: Dict[Key, str]) -> int:
        """Submit the ready runs ``keys`` (as many jobs as ``max_parallel`` allows) in one
        batch (a Slurm job array); returns how many jobs."""
        batches = self._job_batches(keys)
        if self.options.max_parallel:
            live = {self.jobs[k].job_id for k, s in states.items() if s in ('queued', 'running')}
            batches = batches[:max(0, self.options.max_parallel - len(live))]
        if not batches:
            return 0
        calls = [self._call(batch) for batch in batches]
        executor = self._executor = self._executor or make_executor(self.options, self.folder)
        with executor.batch():
            jobs = [executor.submit(call) for call in calls]
        for batch, job in zip(batches, jobs):
            for run, seed, _ in batch:
                self.jobs[(run.ident, seed)] = job
                self.records.put((run.ident, seed), self.options.launcher, job)
                self.retry.discard((run.ident, seed))
        self.log(f'submitted {len(jobs)} job(s): ' + ', '.join(
            f'{call.name} (job {job.job_id})' for call, job in zip(calls, jobs)))
        return len(jobs)

    def _job_batches(self, keys: List[Key]) -> List[List[Member]]:
        """The runs of each job to submit, as ``(run, seed, config)``: one run per job, or
        with ``cohort`` the students grouped (:func:`~.cohorts.group_jobs`)."""
        by_key = {(run.ident, seed): (run, seed) for run, seed in self._keys()}
        runs = [by_key[key] for key in keys]
        batches = [[(run, seed, None)] for run, seed in runs
                   if not self.options.cohort or run.role == 'teacher']
        if self.options.cohort:
            students = [Job(run, seed, self.suite.config_of(run, seed)) for run, seed in runs
                        if run.role != 'teacher']
            batches += [[(job.run, job.seed, job.cfg) for job in group.jobs]
                        for group in group_jobs(students)]
        return batches

    def _call(self, batch: List[Member]) -> TrainJob:
        """The job of one run (``tools/train.py``) or of a cohort
        (``tools/train_cohort.py``); earlier failure records of its runs are cleared."""
        configs, timing = [], {}
        for run, seed, cfg in batch:
            failure = os.path.join(self.suite.run_dir(run, seed), FAILURE_FILE)
            if os.path.exists(failure):
                os.remove(failure)
            configs.append(self._dump_config(run, seed, cfg))
            timing[f'{run.name} seed {seed}'] = os.path.join(self.suite.run_dir(run, seed),
                                                             'run_time.json')
        if len(batch) == 1:
            run, seed, _ = batch[0]
            return TrainJob(train_command(configs[0], self.suite.run_dir(run, seed),
                                          self.options.gpus),
                            f'{run.name} seed {seed}', os.getcwd(), *timing.values())
        return TrainJob(cohort_command(configs, self.options.gpus),
                        'cohort: ' + ', '.join(timing), os.getcwd(), timing)

    def _dump_config(self, run: Run, seed: int, cfg: Optional[Config] = None) -> str:
        """The run's whole config (``Suite.config_of``, or ``cfg``) as a file for
        ``tools/train.py`` or ``tools/train_cohort.py`` (whose member name is the file's:
        ``<run ident>_seed<seed>``); its experiment name is left to each attempt (a requeued
        one logs apart)."""
        cfg = cfg if cfg is not None else self.suite.config_of(run, seed)
        cfg.pop('experiment_name', None)
        path = os.path.join(self.folder, 'configs', f'{run.ident}_seed{seed}.py')
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cfg.dump(path)
        return path

    # ---------------------------------------------------------------------- failures
    def _failure_job(self, run: Run, seed: int) -> Optional[str]:
        path = os.path.join(self.suite.run_dir(run, seed), FAILURE_FILE)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            return json.load(f).get('job')

    def _record_failure(self, run: Run, seed: int, job: submitit.Job) -> None:
        """The run's ``failure.json``: its job's log tail, and as the error the run's own
        line of a cohort's log (``<run ident>_seed<seed>: FAILED: ...``, what
        ``tools/train_cohort.py`` prints), else the tail's last line."""
        log = str(job.paths.stdout)
        tail = log_tail(log)
        last = member_failure(log, f'{run.ident}_seed{seed}') or next(
            (line for line in reversed(tail) if not line.startswith(FAILED_MARK)), 'no output')
        self._write_failure(run, seed, f'job {job.job_id}: {last.strip()}', tail, log,
                            job=job.job_id)
        self.log(f'   FAILED: {run.name} seed {seed} (job {job.job_id}); its log ends:\n'
                 + '\n'.join(f'   | {line}' for line in tail) + f'\n   whole log: {log}')

    def _write_failure(self, run: Run, seed: int, error: str, tail: List[str], log: str,
                       **extra) -> None:
        os.makedirs(self.suite.run_dir(run, seed), exist_ok=True)
        with open(os.path.join(self.suite.run_dir(run, seed), FAILURE_FILE), 'w') as f:
            json.dump(dict(error=error, traceback='\n'.join(tail), log=log, **extra), f,
                      indent=1)

    # ------------------------------------------------------------------------ status
    def _show(self, states: Dict[Key, str]) -> None:
        """The status table, when a state changed or ``status_every_s`` passed."""
        now = self.clock()
        if states == self._shown and now - self._shown_at < self.options.status_every_s:
            return
        self._shown, self._shown_at = dict(states), now
        counts = {s: sum(v == s for v in states.values()) for s in
                  ('done', 'running', 'queued', 'waiting', 'ready', 'failed')}
        lines = [f'[{time.strftime("%H:%M:%S")}] ' + ', '.join(
            f'{n} {s}' for s, n in counts.items() if n)]
        width = max(len(run.name) for run in self.suite.runs)
        for run in self.suite.runs:
            cells = []
            for seed in run.seeds:
                state = states[(run.ident, seed)]
                job = self.jobs.get((run.ident, seed))
                shown = 'pending' if state in ('waiting', 'ready') else state
                cells.append(f'seed {seed} {shown}' + (
                    f' (job {job.job_id})' if job is not None and state in (
                        'queued', 'running', 'failed') else ''))
            lines.append(f'  {run.name:<{width}} ' + ', '.join(cells))
        self.log('\n'.join(lines))
