"""Benchmark suites: a teacher-student-method matrix, run locally or as cluster commands.

A suite is a Python file (read with mmengine's Config)::

    dataset = 'cifar100'                  # the name configs and reference rows use
    config_dir = '../cls'                 # relative to the suite file
    metric = 'accuracy/top1'              # the metric reported (greater is better)
    seeds = [0, 1, 2, 3, 4]               # students are trained once per seed
    pairs = [('resnet32x4', 'resnet8x4'), ...]   # or (teacher, student, pair name)
    methods = 'registered'                # the default: see below; or an explicit dict
                                          # display name -> config prefix {'KD': 'kd'}
    variants = {'TaT': {'TaT (official protocol)': 'tat_official'}}   # optional: extra
                                          # runs placed after the named method's run
    exclude = ['FitNet']                  # optional: registered methods left out
    names = dict(teacher='{teacher}_{dataset}.py', student='{student}_{dataset}.py',
                 method='{method}_{pair}_{dataset}.py')   # the defaults; pair defaults
                                                          # to '{teacher}_{student}'
    reference = 'reference_results.csv'   # optional: the papers' numbers
    cfg_options = {}                      # optional: applied to every run
    released_teachers = dict(path='cifar_teachers/{name}_vanilla/ckpt_epoch_240.pth',
                             names=dict(resnet50='ResNet50'))   # optional: distil from these
                                          # files (name: the teacher's, or its entry in names)
    slurm = dict(account='lab', qos='high')   # optional: extra #SBATCH parameters of
                                          # --launcher slurm (kdbench/benchmark/launch.py)
    grids = {'KD': {'model.methods.kd.temperature': [2.0, 4.0, 8.0]}}   # optional: trial
                                          # runs on a validation split and a row of the
                                          # setting chosen on it (suite_grid.py)

``methods = 'registered'`` runs, for each pair, every method of the method table
(:func:`kdbench.distill.table.registered_methods`, in its order, under its
``display_name``) that has a config for the pair (``{config_prefix}_{pair}_{dataset}.py``),
so a new method joins every suite it has configs for. Explicit ``methods`` and ``variants``
configs must exist for every pair.

It expands to one teacher run per teacher (first seed only), one baseline run per student
and one run per pair and method, whose ``model.teacher_ckpt`` is its teacher run's final
checkpoint (with ``released_teachers``: that file, and no teacher runs). A run is finished
when its work dir's ``last_checkpoint`` names the final epoch's checkpoint; finished runs
are skipped, so a suite can be re-run after a failure or collected after cluster jobs.
"""
from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from kdbench.apis.config import load_config
from kdbench.distill.table import registered_methods

from . import results as R
from .cohorts import Group, Job, group_jobs, with_own_file
from .measure import describe_cpu
from .suite_grid import chosen_row, grid_axes, recipe_setting, settings, short_name, \
    slug, suite_grids

#: Trains several configs as one cohort: ``(configs, run names)`` -> each member's error
#: (``None`` when it trained).
CohortTrainer = Callable[[Sequence[Config], Sequence[str]],
                         Sequence[Optional[BaseException]]]

DEFAULT_NAMES = dict(teacher='{teacher}_{dataset}.py', student='{student}_{dataset}.py',
                     method='{method}_{pair}_{dataset}.py')
FAILURE_FILE = 'failure.json'
#: In a suite's work dir: the CPU and wall time of the last pass that trained its runs.
SUITE_TIME_FILE = 'suite_time.json'


@dataclass
class Run:
    """One config of a suite (trained once per seed); a grid's trial (``kind='trial'``)
    is its method's config with ``options`` (its setting, a held-out validation split)."""
    name: str
    role: str                      # 'teacher', 'baseline' or a method's display name
    config: str
    teacher: str
    student: str = ''
    depends: Optional['Run'] = None
    seeds: List[int] = field(default_factory=list)
    teacher_ckpt: str = ''         # a released teacher's file (instead of ``depends``)
    kind: str = 'run'              # 'run', or 'trial' of a grid
    setting: str = ''              # a grid's setting (trials; a run that is one)
    options: Dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The config's name: the run's folder, and of a trial the folder above its own."""
        return os.path.splitext(os.path.basename(self.config))[0]

    @property
    def ident(self) -> str:
        """The run's unique name: the config's, and a trial's setting."""
        return f'{self.key}__{slug(self.setting)}' if self.kind == 'trial' else self.key

    @property
    def folder(self) -> str:
        """The run's folder in the suite's work dir."""
        return os.path.join(self.key, slug(self.setting)) if self.kind == 'trial' else self.key


def suite_methods(spec: Config, path: str,
                  config_of: Callable[[str], str]) -> List[Tuple[str, str]]:
    """``(display name, config prefix)`` of the method runs of one pair, in order.

    Args:
        spec: the suite (``methods``, ``variants``, ``exclude``; see the module docstring).
        path: the suite file (for messages).
        config_of: a config prefix -> that method's config path for the pair.
    """
    chosen = spec.get('methods', 'registered')
    if chosen != 'registered' and not isinstance(chosen, dict):
        raise ValueError(f"Suite '{path}': methods must be 'registered' or a dict display "
                         f'name -> config prefix, got {chosen!r}.')
    table = {e.display_name: e.config_prefix for e in registered_methods()}
    variants, exclude = dict(spec.get('variants', {})), list(spec.get('exclude', []))
    unknown = [name for name in [*variants, *exclude] if name not in table]
    if unknown:
        raise KeyError(f"Suite '{path}': variants/exclude name {unknown}, which are not "
                       f'registered methods; known: {list(table)}.')
    if chosen == 'registered':
        chosen = {shown: prefix for shown, prefix in table.items()
                  if shown not in exclude and os.path.isfile(config_of(prefix))}
    runs = []
    for shown, prefix in chosen.items():
        runs.append((shown, prefix))
        runs.extend(variants.pop(shown, {}).items())
    if variants:
        raise KeyError(f"Suite '{path}': variants of {list(variants)}, which this suite does "
                       'not run for every pair; add those methods or drop the variants.')
    return runs


class Suite:
    """A loaded suite file: its runs in dependency order and where they work."""

    def __init__(self, path: str, work_dir: str, cfg_options: Optional[dict] = None):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"Suite file '{path}' not found.")
        self.path, self.work_dir = path, work_dir
        spec = Config.fromfile(path)
        missing = [k for k in ('dataset', 'config_dir', 'metric', 'pairs') if k not in spec]
        if missing:
            raise KeyError(f"Suite '{path}' lacks {missing}; see kdbench/benchmark/suite.py.")
        here = os.path.dirname(os.path.abspath(path))
        self.dataset, self.metric = spec.dataset, spec.metric
        self.cfg_options = dict(spec.get('cfg_options', {}), **(cfg_options or {}))
        if not isinstance(spec.get('slurm', {}), dict):
            raise ValueError(f"Suite '{path}': slurm must be a dict of #SBATCH parameters, "
                             f"e.g. slurm = dict(account='lab'); got {spec.slurm!r}.")
        self.slurm = dict(spec.get('slurm', {}))
        self.reference = (R.load_reference(os.path.join(here, spec.reference))
                          if spec.get('reference') else [])
        names = dict(DEFAULT_NAMES, **spec.get('names', {}))
        config_dir = os.path.join(here, spec.config_dir)
        seeds = list(spec.get('seeds', [0]))
        released = spec.get('released_teachers')

        def config(kind: str, **fields) -> str:
            name = names[kind].format(dataset=self.dataset, **fields)
            return os.path.normpath(os.path.join(config_dir, name))

        teachers: Dict[str, Run] = {}
        students: Dict[str, Run] = {}
        methods: List[Run] = []
        for teacher, student, *pair in spec.pairs:
            pair = pair[0] if pair else f'{teacher}_{student}'
            if teacher not in teachers and not released:
                teachers[teacher] = Run(f'teacher {teacher}', 'teacher',
                                        config('teacher', teacher=teacher), teacher,
                                        seeds=seeds[:1])
            if student not in students:
                students[student] = Run(f'baseline {student}', 'baseline',
                                        config('student', student=student), '', student,
                                        seeds=seeds)
            for shown, prefix in suite_methods(spec, path, lambda m: config(
                    'method', method=m, pair=pair)):
                methods.append(Run(f'{shown} {teacher} -> {student}', shown,
                                   config('method', method=prefix, pair=pair), teacher,
                                   student, teachers.get(teacher), seeds,
                                   released['path'].format(name=released.get('names', {}).get(
                                       teacher, teacher)) if released else ''))
        grids = suite_grids(spec, path, list(dict.fromkeys(run.role for run in methods)))
        #: Each grid's method run and trial runs, in grid order (the chosen rows' input).
        self.grids: List[Tuple[Run, List[Run]]] = []
        methods = [each for run in methods for each in [run, *(
            self._trials(run, grids[run.role])
            if run.role in grids and os.path.isfile(run.config) else [])]]
        self.runs = [*teachers.values(), *students.values(), *methods]
        self._final_names: Dict[str, str] = {}
        absent = [r.config for r in self.runs if not os.path.isfile(r.config)]
        if absent:
            raise FileNotFoundError(f"Suite '{path}' names configs that do not exist: "
                                    f'{absent[:5]}{" ..." if len(absent) > 5 else ""}')

    def _trials(self, run: Run, grid: Dict[str, list]) -> List[Run]:
        """The new trial runs of ``run``'s grid (``run`` itself is the trial of its own
        setting when :func:`~kdbench.benchmark.suite_grid.recipe_setting` says so)."""
        cfg = load_config(run.config, self.cfg_options)
        axes = grid_axes(cfg, grid, f"Suite '{self.path}' grids['{run.role}']:")
        own = recipe_setting(cfg, axes)
        trials = []
        for setting in settings(axes):
            name = short_name(axes, setting)
            if setting == own:
                run.setting = name
                trials.append(run)
                continue
            options = {a.key: v for a, v in zip(axes, setting)}
            options['validation.split'] = 'holdout'
            trials.append(Run(f'{run.name} [{name}]', run.role, run.config, run.teacher,
                              run.student, run.depends, run.seeds, run.teacher_ckpt, 'trial',
                              name, options))
        self.grids.append((run, trials))
        return [trial for trial in trials if trial is not run]

    # ------------------------------------------------------------------ work dirs, state
    def run_dir(self, run: Run, seed: int) -> str:
        return os.path.join(self.work_dir, run.folder, f'seed_{seed}')

    def options_of(self, run: Run) -> Dict[str, Any]:
        """The config options of the run: the suite's, then the run's own (a trial's)."""
        return dict(self.cfg_options, **run.options)

    def config_of(self, run: Run, seed: int) -> Config:
        """The run's config with the suite's and its own options, seed, work dir and
        teacher."""
        cfg = load_config(run.config, self.options_of(run), self.run_dir(run, seed))
        cfg.randomness = dict(cfg.get('randomness', {}), seed=seed)
        cfg.experiment_name = f'{run.ident}_seed{seed}_{time.strftime("%Y%m%d_%H%M%S")}'
        if self.teacher_ckpt(run):
            cfg.model.teacher_ckpt = self.teacher_ckpt(run)
        return cfg

    def teacher_ckpt(self, run: Run) -> str:
        """The teacher checkpoint ``run`` distils from ('' for teachers and baselines)."""
        if run.depends is not None:
            return self.final_checkpoint(run.depends, run.depends.seeds[0])
        return run.teacher_ckpt

    def final_checkpoint(self, run: Run, seed: int) -> str:
        """Where the run's last checkpoint is written (epoch- or iteration-based)."""
        if run.config not in self._final_names:      # read each config once
            train_cfg = load_config(run.config, self.cfg_options).train_cfg
            by_epoch = train_cfg.get('by_epoch', True) and 'max_epochs' in train_cfg
            self._final_names[run.config] = (f"epoch_{train_cfg['max_epochs']}.pth" if by_epoch
                                             else f"iter_{train_cfg['max_iters']}.pth")
        return os.path.join(self.run_dir(run, seed), self._final_names[run.config])

    def status(self, run: Run, seed: int) -> str:
        """'done', 'failed', 'incomplete' (started, not finished) or 'pending'."""
        work_dir = self.run_dir(run, seed)
        final = self.final_checkpoint(run, seed)
        latest = os.path.join(work_dir, 'last_checkpoint')
        if os.path.isfile(final) and os.path.isfile(latest):
            with open(latest) as f:
                if os.path.basename(f.read().strip()) == os.path.basename(final):
                    return 'done'
        if os.path.isfile(os.path.join(work_dir, FAILURE_FILE)):
            return 'failed'
        return 'incomplete' if os.path.isdir(work_dir) else 'pending'

    # -------------------------------------------------------------------------- running
    def run_local(self, train_fn: Callable[[Config, str], None], log=print,
                  train_cohort_fn: Optional[CohortTrainer] = None) -> None:
        """Train every unfinished run in order, in this process; a failing run is recorded
        (``failure.json`` in its work dir) and the suite goes on; runs whose teacher
        failed are recorded as failed too.

        Args:
            train_fn: trains one run: ``(config, run name)``.
            log: prints a progress line.
            train_cohort_fn: when given, the teachers train first, then the student runs
                are grouped into cohorts (:func:`~kdbench.benchmark.cohorts.group_jobs`)
                and each group of several runs is trained by
                ``train_cohort_fn(configs, run names)``, which returns each member's error
                (``None`` when it trained); a group of one trains with ``train_fn``.
        """
        jobs = []
        for i, run in enumerate(self.runs, 1):
            for seed in run.seeds:
                if not self._start(i, run, seed, log):
                    continue
                if train_cohort_fn is None or run.role == 'teacher':
                    self._train_alone(run, seed, train_fn, log)
                    continue
                try:
                    cfg = self.config_of(run, seed)
                    if run.kind == 'trial':      # its own file: cohort members' names
                        cfg = with_own_file(cfg, os.path.join(self.run_dir(run, seed),
                                                              f'{run.ident}.py'))
                    jobs.append(Job(run, seed, cfg))
                except Exception as err:      # recorded; the suite goes on
                    self._failed(run, seed, err, traceback.format_exc(), log)
        for group in group_jobs(jobs):
            if len(group.jobs) == 1:
                self._train_alone(group.jobs[0].run, group.jobs[0].seed, train_fn, log)
            else:
                self._train_cohort(group.jobs, train_cohort_fn, log)

    def cohort_groups(self) -> List[Group]:
        """The cohorts ``run_local`` with a ``train_cohort_fn`` would train now: the
        unfinished student runs, grouped (nothing is written)."""
        return group_jobs([Job(run, seed, self.config_of(run, seed)) for run in self.runs
                           if run.role != 'teacher' for seed in run.seeds
                           if self.status(run, seed) != 'done'])

    def _start(self, index: int, run: Run, seed: int, log) -> bool:
        """Log the run; whether it is to train (not finished, its teacher finished: else
        it is recorded as failed). Clears an earlier failure record."""
        if self.status(run, seed) == 'done':
            log(f'== [{index}/{len(self.runs)}] {run.name} seed {seed}: finished, skipped')
            return False
        log(f'== [{index}/{len(self.runs)}] {run.name} seed {seed}: {run.config}')
        os.makedirs(self.run_dir(run, seed), exist_ok=True)
        failure = os.path.join(self.run_dir(run, seed), FAILURE_FILE)
        if os.path.exists(failure):
            os.remove(failure)
        if run.depends is not None and \
                self.status(run.depends, run.depends.seeds[0]) != 'done':
            self._fail(failure, f'teacher run {run.depends.name!r} did not finish')
            return False
        return True

    def _train_alone(self, run: Run, seed: int, train_fn, log) -> None:
        start = time.perf_counter()
        try:
            train_fn(self.config_of(run, seed), run.name)
        except Exception as err:      # recorded; the suite goes on
            self._failed(run, seed, err, traceback.format_exc(), log)
            return
        self._timed(run, seed, time.perf_counter() - start)

    def _train_cohort(self, jobs: List[Job], train_cohort_fn: CohortTrainer, log) -> None:
        """One cohort; each member's time is recorded as the cohort's time divided by its
        members (``run_time.json`` also holds the cohort's whole time and members)."""
        log(f'== cohort of {len(jobs)} runs: ' + ', '.join(job.label for job in jobs))
        start = time.perf_counter()
        try:
            errors = list(train_cohort_fn([job.cfg for job in jobs],
                                          [job.run.name for job in jobs]))
        except Exception as err:      # the cohort as a whole: every member failed
            for job in jobs:
                self._failed(job.run, job.seed, err, traceback.format_exc(), log,
                             prefix='cohort: ', named=True)
            return
        seconds = time.perf_counter() - start
        for job, error in zip(jobs, errors):
            if error is not None:
                details = ''.join(traceback.format_exception(type(error), error,
                                                             error.__traceback__))
                self._failed(job.run, job.seed, error, details, log, named=True)
            else:
                self._timed(job.run, job.seed, seconds / len(jobs),
                            cohort=dict(seconds=seconds, runs=[j.label for j in jobs]))

    def _timed(self, run: Run, seed: int, seconds: float, **extra) -> None:
        with open(os.path.join(self.run_dir(run, seed), 'run_time.json'), 'w') as f:
            json.dump(dict(seconds=seconds, **extra), f)

    def _failed(self, run: Run, seed: int, err: BaseException, details: str, log,
                prefix: str = '', named: bool = False) -> None:
        """Record ``err`` in the run's ``failure.json`` and log it (``named``: with the
        run's name, for cohort members)."""
        error = f'{prefix}{type(err).__name__}: {err}'
        self._fail(os.path.join(self.run_dir(run, seed), FAILURE_FILE), error, details)
        log(f'   FAILED ({run.name} seed {seed}): {error}' if named else f'   FAILED: {error}')

    @staticmethod
    def _fail(path: str, error: str, details: str = '') -> None:
        with open(path, 'w') as f:
            json.dump(dict(error=error, traceback=details), f, indent=1)

    def commands(self, gpus: int = 8, partition: Optional[str] = None) -> List[str]:
        """Shell lines that train the unfinished runs on a cluster: one ``torchrun`` (or,
        with ``partition``, one ``srun``) per run and seed; teachers first."""
        stage2 = '# stage 2: students (needs the teachers\' final checkpoints)'
        lines = ['# stage 1: teachers (wait for them before stage 2)']
        for run in self.runs:
            if run.role != 'teacher' and stage2 not in lines:
                lines.append(stage2)
            for seed in run.seeds:
                if self.status(run, seed) == 'done':
                    continue
                work_dir = self.run_dir(run, seed)
                extra = f' --seed {seed}'
                options = [f'{k}={v}' for k, v in self.options_of(run).items()]
                if self.teacher_ckpt(run):
                    options.append(f'model.teacher_ckpt={self.teacher_ckpt(run)}')
                if options:
                    extra += ' --cfg-options ' + ' '.join(options)
                if partition:
                    lines.append(f'GPUS={gpus} bash tools/slurm_train.sh {partition} '
                                 f'{run.ident}_s{seed} {run.config} {work_dir}{extra}')
                else:
                    lines.append(f'bash tools/dist_train.sh {run.config} {gpus} '
                                 f'--work-dir {work_dir}{extra}')
        return lines

    def unfinished(self) -> List[str]:
        """``'<run> seed <n>'`` of every run and seed not finished yet."""
        return [f'{run.name} seed {seed}' for run in self.runs for seed in run.seeds
                if self.status(run, seed) != 'done']

    def record_time(self, times: Dict[str, float], cohort: bool, trained: Sequence[str]) -> str:
        """Write ``suite_time.json`` to the work dir: ``times`` (``CpuClock.elapsed()`` of a
        pass over the suite: CPU time of the runner and every process it started, wall
        time), whether it trained with ``--cohort`` and the runs it set out to train
        (``trained``, :meth:`unfinished` before it); return the summary line."""
        os.makedirs(self.work_dir, exist_ok=True)
        with open(os.path.join(self.work_dir, SUITE_TIME_FILE), 'w') as f:
            json.dump(dict(times, cohort=cohort, trained=list(trained)), f, indent=1)
        return (f"{describe_cpu(times['user_seconds'], times['sys_seconds'])} of the runner "
                f"and every process it started, wall {times['wall_seconds']:.1f} s, "
                f"{len(trained)} run(s) to train"
                f"{', as cohorts' if cohort else ''} ({SUITE_TIME_FILE})")

    # ------------------------------------------------------------------------ collecting
    def collect(self) -> List[dict]:
        """One row per run: per-seed status and metrics, best/last summaries, the paper."""
        rows = []
        for run in self.runs:
            seeds = []
            for seed in run.seeds:
                work_dir = self.run_dir(run, seed)
                entry = dict(seed=seed, work_dir=work_dir, status=self.status(run, seed))
                if entry['status'] == 'done':
                    entry.update(R.seed_numbers(work_dir, self.metric))
                timing = os.path.join(work_dir, 'run_time.json')
                if entry['status'] == 'done' and os.path.isfile(timing):
                    with open(timing) as f:
                        entry['seconds'] = json.load(f)['seconds']
                if entry['status'] == 'failed':
                    with open(os.path.join(work_dir, FAILURE_FILE)) as f:
                        entry['error'] = json.load(f)['error']
                seeds.append(entry)
            done = [s for s in seeds if 'protocol' in s]
            states = {s['status'] for s in seeds}
            errors = [s['error'] for s in seeds if s['status'] == 'failed']
            status = ('done' if states == {'done'} else
                      f'failed: {errors[0]}' if errors else '/'.join(sorted(states)))
            metric = self.metric.split('/')[-1]
            rows.append(dict(
                name=run.name, role=run.role, teacher=run.teacher, student=run.student,
                kind=run.kind, setting=run.setting,
                metric=self.metric, seeds=seeds, status=status,
                work_dir=os.path.relpath(os.path.dirname(seeds[0]['work_dir']), self.work_dir),
                seconds=R.summarize([s['seconds'] for s in done if 'seconds' in s])['mean'],
                best=R.summarize([s['best'] for s in done if 'best' in s]),
                last=R.summarize([s['last'] for s in done if 'last' in s]),
                chosen=R.summarize([s['chosen'] for s in done if 'chosen' in s]),
                val=R.summarize([s['val'] for s in done if 'val' in s]),
                paper=R.reference_for(self.reference, self.dataset, run.teacher, run.student,
                                      run.role, metric)))
        return self._with_chosen_rows(rows)

    def _with_chosen_rows(self, rows: List[dict]) -> List[dict]:
        """``rows`` with, after each grid's last trial, its 'chosen on validation' row
        (:func:`~kdbench.benchmark.suite_grid.chosen_row`)."""
        by_run = {id(run): row for run, row in zip(self.runs, rows)}
        after = {id(max(trials, key=self.runs.index)): chosen_row(
            [by_run[id(t)] for t in trials], f'{run.name}, chosen on validation')
            for run, trials in self.grids}
        out = []
        for run, row in zip(self.runs, rows):
            out.append(row)
            if id(run) in after:
                out.append(after[id(run)])
        return out

    def report(self, rows: List[dict]) -> str:
        """Write ``results.csv`` and ``results.md`` to the work dir; return the table."""
        os.makedirs(self.work_dir, exist_ok=True)
        R.write_results_csv(rows, os.path.join(self.work_dir, 'results.csv'))
        table = R.markdown_table(rows)
        with open(os.path.join(self.work_dir, 'results.md'), 'w') as f:
            f.write(f'# {os.path.basename(self.path)}: {self.metric} ({self.dataset})\n\n'
                    f'{R.PROTOCOL_LEGEND}\n\n{R.matrix_table(rows)}\n\nEvery run:\n\n'
                    f'{table}\n')
        return table
