"""Sweeps: train every setting of a grid on the held-out validation split, choose one.

A sweep is one config, a grid (:mod:`~kdbench.benchmark.sweep_grid`: ``--grid KEY=V1,V2``,
every combination of the keys' values, the first key outermost) and seeds. Each trial (one
setting, one seed) trains with ``validation.split='holdout'`` in
``<work dir>/<key1=v1,key2=v2>/seed<k>`` and is finished when its run wrote
``final_metrics.json`` (:class:`~kdbench.hooks.FinalMetricsHook`: validation metrics on
the held-out split of the best checkpoint, its test metrics on the test split);
:mod:`~kdbench.benchmark.sweep_report` chooses among the settings and writes the tables.
``--final`` retrains the chosen setting on the whole training set
(``validation.split='test'``) in ``<work dir>/final/<setting>/seed<k>`` and reports its
last epoch's test metrics.

Finished trials are skipped, so the same command resumes a killed sweep; a trial that
stopped part-way continues from its latest checkpoint, a failed one (``failure.json``, as
in suites) trains again.
"""
from __future__ import annotations

import itertools
import json
import os
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from kdbench.apis.config import load_config
from kdbench.apis.preflight import preflight, resume_checkpoint
from kdbench.apis.validation import training_config
from kdbench.hooks.final_metrics import FILE_NAME as METRICS_FILE

from .cohorts import Group, Job, group_jobs, with_own_file
from .suite import FAILURE_FILE, CohortTrainer
from .sweep_grid import Axis, parse_grid, setting_folder, setting_name

#: The protocol each kind of trial trains with (``validation.split``).
PROTOCOLS = {'trial': 'holdout', 'final': 'test'}


@dataclass(frozen=True)
class Trial:
    """One setting (a value per axis) trained with one seed; ``kind`` is ``'trial'`` (on
    the held-out split) or ``'final'`` (the chosen setting on the whole training set)."""
    setting: Tuple[Any, ...]
    seed: int
    name: str
    work_dir: str
    kind: str = 'trial'

    @property
    def label(self) -> str:
        return f'{self.name} seed {self.seed}' + (' (final)' if self.kind == 'final' else '')


def read_metrics(trial: Trial) -> Dict[str, Any]:
    """The trial's ``final_metrics.json``; ``ValueError`` naming the file when it lacks a
    key of the contract or follows another protocol than the trial trained with."""
    path = os.path.join(trial.work_dir, METRICS_FILE)
    with open(path) as f:
        metrics = json.load(f)
    missing = [k for k in ('protocol', 'val', 'test', 'val_metric', 'epoch') if k not in metrics]
    if missing:
        raise ValueError(f'{path} lacks {missing}.')
    if metrics['protocol'] != PROTOCOLS[trial.kind]:
        raise ValueError(f"{path}: protocol '{metrics['protocol']}', but the {trial.kind} "
                         f"trained with validation.split='{PROTOCOLS[trial.kind]}'.")
    name = metrics['val_metric']
    if name not in metrics['val'] or name not in metrics['test']:
        raise ValueError(f"{path}: val_metric '{name}' is missing from its val or test.")
    return metrics


class Sweep:
    """A config's grid and seeds, checked (every trial's config loads, the inputs of
    every setting exist) before anything trains.

    Args:
        config: the config file.
        grid: ``KEY=V1,V2,...`` options (:func:`~kdbench.benchmark.sweep_grid.parse_grid`).
        seeds: each setting trains once per seed (``randomness.seed``).
        work_dir: where trials, tables and the plot go.
        cfg_options: ``--cfg-options`` applied to every trial (``validation.size``,
            ``fraction`` and ``seed`` included; ``validation.split`` is the sweep's).
    """

    def __init__(self, config: str, grid: Sequence[str], seeds: Sequence[int],
                 work_dir: str, cfg_options: Optional[Dict[str, Any]] = None):
        self.config, self.work_dir = config, work_dir
        self.cfg_options = dict(cfg_options or {})
        if 'validation.split' in self.cfg_options or 'validation' in self.cfg_options:
            raise ValueError('--cfg-options validation.split: the sweep trains its trials on '
                             "the held-out split and --final with 'test'; set only "
                             'validation.size, validation.fraction or validation.seed.')
        if 'randomness.seed' in self.cfg_options:
            raise ValueError('--cfg-options randomness.seed: the sweep seeds each trial; '
                             'give the seeds with --seeds.')
        if not seeds or len(set(seeds)) < len(seeds):
            raise ValueError(f'--seeds {list(seeds)}: give one or more distinct seeds.')
        self.seeds = list(seeds)
        self.axes: List[Axis] = parse_grid(load_config(config, self.cfg_options), grid,
                                           self.cfg_options)
        self.settings = list(itertools.product(*(a.values for a in self.axes)))
        self.trials = [self.trial(s, seed) for s in self.settings for seed in self.seeds]
        for index, trial in enumerate(self.trials):
            cfg = self.config_of(trial)      # each loads; a bad validation key stops here
            training_config(cfg)
            if index % len(self.seeds) == 0:     # the inputs of each setting
                preflight(cfg, 'train')

    def trial(self, setting: Sequence[Any], seed: int, kind: str = 'trial') -> Trial:
        folder = os.path.join(*(['final'] if kind == 'final' else []),
                              setting_folder(self.axes, setting))
        return Trial(tuple(setting), seed, setting_name(self.axes, setting),
                     os.path.join(self.work_dir, folder, f'seed{seed}'), kind)

    def config_of(self, trial: Trial) -> Config:
        """The trial's config: the options, its setting, seed, work dir and protocol. A
        final run keeps no best checkpoint, so it reports its last epoch: choosing the
        epoch by the test split would tune on it."""
        options = dict(self.cfg_options, **{a.key: v for a, v in zip(self.axes, trial.setting)})
        cfg = load_config(self.config, options, trial.work_dir)
        if trial.kind == 'trial':
            cfg.validation = dict(cfg.get('validation') or {}, split='holdout')
        else:
            cfg.validation = dict(split='test')
            if cfg.get('default_hooks', {}).get('checkpoint'):
                cfg.default_hooks.checkpoint.save_best = None
        cfg.randomness = dict(cfg.get('randomness', {}), seed=trial.seed)
        stamp = time.strftime('%Y%m%d_%H%M%S')
        cfg.experiment_name = f'{os.path.basename(os.path.dirname(trial.work_dir))}_' \
                              f'seed{trial.seed}_{stamp}'
        return cfg

    def status(self, trial: Trial) -> str:
        """'done' (``final_metrics.json``, no failure since), 'failed', 'incomplete'
        (started) or 'pending'."""
        if os.path.isfile(os.path.join(trial.work_dir, FAILURE_FILE)):
            return 'failed'
        if os.path.isfile(os.path.join(trial.work_dir, METRICS_FILE)):
            return 'done'
        return 'incomplete' if os.path.isdir(trial.work_dir) else 'pending'

    def final_trials(self, setting: Sequence[Any]) -> List[Trial]:
        """``--final``: the chosen setting once per seed on the whole training set."""
        return [self.trial(setting, seed, 'final') for seed in self.seeds]

    # -------------------------------------------------------------------------- running
    def run(self, trials: Sequence[Trial], train_fn: Callable[[Config, str], None],
            log=print, train_cohort_fn: Optional[CohortTrainer] = None) -> None:
        """Train the unfinished ``trials`` in order; a failing one is recorded
        (``failure.json``) and the others go on.

        Args:
            train_fn: trains one trial: ``(config, trial label)``.
            log: prints a progress line.
            train_cohort_fn: when given, trials that can share their data pass
                (:func:`~kdbench.benchmark.cohorts.group_jobs`) train as one cohort:
                ``train_cohort_fn(configs, labels)`` returns each member's error.
        """
        jobs = []
        for index, trial in enumerate(trials, 1):
            if self.status(trial) == 'done':
                log(f'== [{index}/{len(trials)}] {trial.label}: finished, skipped')
                continue
            log(f'== [{index}/{len(trials)}] {trial.label}')
            os.makedirs(trial.work_dir, exist_ok=True)
            failure = os.path.join(trial.work_dir, FAILURE_FILE)
            if os.path.exists(failure):
                os.remove(failure)
            try:
                cfg = self._resumable(trial)
                jobs.append(Job(trial, trial.seed, with_own_file(cfg, _own_path(trial))
                                if train_cohort_fn else cfg))
            except Exception as err:      # recorded; the sweep goes on
                self._failed(trial, err, traceback.format_exc(), log)
        for group in group_jobs(jobs) if train_cohort_fn else [Group([j]) for j in jobs]:
            if len(group.jobs) == 1:
                self._train_alone(group.jobs[0], train_fn, log)
            else:
                self._train_cohort(group.jobs, train_cohort_fn, log)

    def _resumable(self, trial: Trial) -> Config:
        """The trial's config, continuing its latest checkpoint when it has one."""
        cfg = self.config_of(trial)
        checkpoint = resume_checkpoint(trial.work_dir, required=False)
        if checkpoint:
            cfg.resume, cfg.load_from = True, checkpoint
        return cfg

    def _train_alone(self, job: Job, train_fn, log) -> None:
        try:
            train_fn(job.cfg, job.run.label)
        except Exception as err:      # recorded; the sweep goes on
            self._failed(job.run, err, traceback.format_exc(), log)
            return
        self._check_written(job.run, log)

    def _train_cohort(self, jobs: List[Job], train_cohort_fn: CohortTrainer, log) -> None:
        log(f'== cohort of {len(jobs)} trials: ' + ', '.join(j.run.label for j in jobs))
        try:
            errors = list(train_cohort_fn([j.cfg for j in jobs], [j.run.label for j in jobs]))
        except Exception as err:      # the cohort as a whole: every member failed
            for job in jobs:
                self._failed(job.run, err, traceback.format_exc(), log, prefix='cohort: ')
            return
        for job, error in zip(jobs, errors):
            if error is None:
                self._check_written(job.run, log)
            else:
                self._failed(job.run, error, ''.join(traceback.format_exception(
                    type(error), error, error.__traceback__)), log)

    def _check_written(self, trial: Trial, log) -> None:
        """A trial that trained must have written a valid ``final_metrics.json``."""
        try:
            if not os.path.isfile(os.path.join(trial.work_dir, METRICS_FILE)):
                raise FileNotFoundError(
                    f'training ended without writing {METRICS_FILE} in {trial.work_dir}: '
                    'does this kdbench read the validation config key?')
            read_metrics(trial)
        except Exception as err:
            self._failed(trial, err, traceback.format_exc(), log)

    @staticmethod
    def _failed(trial: Trial, err: BaseException, details: str, log,
                prefix: str = '') -> None:
        error = f'{prefix}{type(err).__name__}: {err}'
        with open(os.path.join(trial.work_dir, FAILURE_FILE), 'w') as f:
            json.dump(dict(error=error, traceback=details), f, indent=1)
        log(f'   FAILED ({trial.label}): {error}')


def _own_path(trial: Trial) -> str:
    """``<setting>_seed<k>.py`` in the trial's work dir (a cohort member's own file)."""
    setting = os.path.basename(os.path.dirname(trial.work_dir))
    return os.path.join(trial.work_dir, f'{setting}_seed{trial.seed}.py')
