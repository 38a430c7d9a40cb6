"""A sweep's results: the choice on the validation split, ``sweep.csv``, ``sweep.md``.

The choice: among the settings whose every seed finished, the one with the highest mean
validation metric over seeds (higher is better: the main metric of every kdbench task,
accuracy or mIoU); ties (equal means) go to the first setting in grid order. No setting is
chosen while a trial is unfinished or failed: a choice over part of the grid would depend
on which trials failed.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple

from . import results as R
from .plots import plot_sweep
from .suite import FAILURE_FILE
from .sweep import Sweep, Trial, read_metrics
from .sweep_grid import format_value

TIE_RULE = 'ties (equal means) go to the first setting in grid order'


@dataclass
class TrialResult:
    """A trial's state and, when finished, its metrics (``val`` is ``None`` for a final
    run, which has no held-out split)."""
    trial: Trial
    status: str
    metric: str = ''
    val: Optional[float] = None
    test: Optional[float] = None
    epoch: Optional[int] = None
    error: str = ''


@dataclass
class SettingResult:
    """One setting's trials and their val/test summaries over seeds."""
    setting: Tuple[Any, ...]
    trials: List[TrialResult] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(t.status == 'done' for t in self.trials)

    @property
    def val(self) -> dict:
        return R.summarize([t.val for t in self.trials if t.val is not None])

    @property
    def test(self) -> dict:
        return R.summarize([t.test for t in self.trials if t.test is not None])


def collect(sweep: Sweep, trials: Sequence[Trial]) -> List[TrialResult]:
    """Each trial's state and metrics; a ``final_metrics.json`` that breaks the contract
    or names another metric than the first trial's makes the trial 'failed'."""
    results, metric = [], ''
    for trial in trials:
        result = TrialResult(trial, sweep.status(trial))
        if result.status == 'failed':
            result.error = _failure(trial)
        elif result.status == 'done':
            try:
                metrics = read_metrics(trial)
                metric = metric or metrics['val_metric']
                if metrics['val_metric'] != metric:
                    raise ValueError(f"val_metric '{metrics['val_metric']}', but other "
                                     f"trials report '{metric}'.")
            except Exception as err:
                result.status, result.error = 'failed', f'{type(err).__name__}: {err}'
            else:
                result.metric, result.epoch = metric, metrics['epoch']
                result.test = float(metrics['test'][metric])
                if trial.kind == 'trial':
                    result.val = float(metrics['val'][metric])
        results.append(result)
    return results


def _failure(trial: Trial) -> str:
    with open(os.path.join(trial.work_dir, FAILURE_FILE)) as f:
        return json.load(f).get('error', '')


def by_setting(sweep: Sweep, results: Sequence[TrialResult]) -> List[SettingResult]:
    """The results grouped by setting, in grid order."""
    groups = {setting: SettingResult(setting) for setting in sweep.settings}
    for result in results:
        groups[result.trial.setting].trials.append(result)
    return list(groups.values())


def choose(settings: Sequence[SettingResult]) -> Tuple[Optional[SettingResult], str]:
    """The chosen setting (module docstring) and why none is chosen ('' when one is)."""
    unfinished = sum(not s.complete for s in settings)
    if unfinished:
        return None, (f'{unfinished} setting(s) have unfinished or failed trials: rerun the '
                      'same command to train them.')
    # max() keeps the first of equal values: ties go to the earlier setting in grid order
    return max(settings, key=lambda setting: setting.val['mean']), ''


def write_csv(path: str, sweep: Sweep, results: Sequence[TrialResult],
              chosen: Optional[SettingResult]) -> None:
    """``sweep.csv``: one row per trial and seed (``kind`` 'trial'), then the final runs
    (``kind`` 'final', no ``val``); ``chosen`` is 1 on the rows of the chosen setting."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['kind', *[a.key for a in sweep.axes], 'seed', 'metric', 'val', 'test',
                         'epoch', 'chosen', 'status', 'work_dir', 'error'])
        for r in results:
            picked = chosen is not None and r.trial.setting == chosen.setting
            writer.writerow([r.trial.kind, *[format_value(v) for v in r.trial.setting],
                             r.trial.seed, r.metric, _blank(r.val), _blank(r.test),
                             _blank(r.epoch), int(picked), r.status, r.trial.work_dir,
                             r.error])


def _blank(value: Any) -> Any:
    return '' if value is None else value


def markdown(sweep: Sweep, settings: Sequence[SettingResult], finals: Sequence[TrialResult],
             chosen: Optional[SettingResult], why: str) -> str:
    """``sweep.md``: the protocol, the choice, a line per setting, the final runs and
    every trial."""
    metric = next((t.metric for s in settings for t in s.trials if t.metric),
                  "the task's main metric")
    keys = [a.key for a in sweep.axes]
    seeds = ', '.join(map(str, sweep.seeds))
    lines = [f'# Sweep of {sweep.config}', '',
             f'Each trial trained on the training set without its held-out validation split '
             f"(validation.split=holdout); `val` is its {metric} on that split, `test` the "
             'same weights on the test split, evaluated once at the end. Chosen: the highest '
             f'mean `val` over seeds {seeds} (higher is better); {TIE_RULE}.', '',
             f'Chosen: **{chosen_text(sweep, chosen)}**' if chosen else f'Not chosen: {why}',
             '', '| ' + ' | '.join(keys) + ' | seeds done | val | test | chosen |',
             '|' + '---|' * (len(keys) + 4)]
    for s in settings:
        done = sum(t.status == 'done' for t in s.trials)
        lines.append('| ' + ' | '.join(format_value(v) for v in s.setting) +
                     f' | {done}/{len(s.trials)} | {_summary(s.val)} | {_summary(s.test)} | '
                     f'{"yes" if chosen and s.setting == chosen.setting else ""} |')
    if finals:
        test = R.summarize([t.test for t in finals if t.test is not None])
        lines += ['', f'Final (`--final`): the chosen setting retrained on the whole training '
                  'set (validation.split=test), its last epoch on the test split: '
                  f'{metric} {_summary(test)} '
                  f'({sum(t.status == "done" for t in finals)}/{len(finals)} seeds done).']
    lines += ['', 'Every trial:', '',
              '| kind | ' + ' | '.join(keys) + ' | seed | val | test | epoch | status |',
              '|' + '---|' * (len(keys) + 6)]
    for t in [r for s in settings for r in s.trials] + list(finals):
        status = t.status if not t.error else f'{t.status}: {t.error}'
        lines.append(f'| {t.trial.kind} | ' + ' | '.join(format_value(v) for v in
                                                         t.trial.setting) +
                     f' | {t.trial.seed} | {_number(t.val)} | {_number(t.test)} | '
                     f'{_blank(t.epoch)} | {status} |')
    lines += ['', '![val against each swept value](sweep.png)', '']
    return '\n'.join(lines)


def chosen_text(sweep: Sweep, chosen: SettingResult) -> str:
    return ', '.join(f'{a.key}={format_value(v)}' for a, v in zip(sweep.axes, chosen.setting))


def _number(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.2f}'


def _summary(summary: dict) -> str:
    if summary['mean'] is None:
        return '-'
    return _number(summary['mean']) + (f' ± {summary["std"]:.2f}' if summary['std'] else '')


def report(sweep: Sweep, trials: Sequence[TrialResult], finals: Sequence[TrialResult],
           chosen: Optional[SettingResult], why: str) -> str:
    """Write ``sweep.csv``, ``sweep.md`` and ``sweep.png`` to the work dir; returns
    ``sweep.md``'s text."""
    os.makedirs(sweep.work_dir, exist_ok=True)
    settings = by_setting(sweep, trials)
    write_csv(os.path.join(sweep.work_dir, 'sweep.csv'), sweep, [*trials, *finals], chosen)
    text = markdown(sweep, settings, finals, chosen, why)
    with open(os.path.join(sweep.work_dir, 'sweep.md'), 'w') as f:
        f.write(text)
    metric = next((t.metric for t in trials if t.metric), 'val')
    plot_sweep([a.key for a in sweep.axes],
               [(s.setting, [t.val for t in s.trials if t.val is not None]) for s in settings],
               os.path.join(sweep.work_dir, 'sweep.png'), metric,
               chosen.setting if chosen else None)
    return text
