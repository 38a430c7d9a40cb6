"""Grids in suites: a method's settings tried on a validation split, one chosen.

A suite may give methods (by display name) a grid of config values::

    grids = {'KD': {'model.methods.kd.temperature': [2.0, 4.0, 8.0]},
             'AT': {'model.methods.at.loss_weight': [10.0, 100.0, 1000.0]}}

For every pair, a method with a grid gets one **trial** run per setting (every
combination of the values, the first key outermost; each trained with every seed of the
suite), checked like ``tools/sweep.py --grid`` (:mod:`~kdbench.benchmark.sweep_grid`).
Trials validate on a split held out of the training set: the method config's own
``validation`` key when it holds one out, else ``validation.split='holdout'`` with the
dataset's default size. When the method's config already validates on a held-out split
and its values are one setting of the grid, its own run is that setting's trial (no run
twice).

The **chosen** row (:func:`chosen_row`) is the setting with the highest validation metric,
averaged over seeds (higher is better; ties: the first setting in grid order), shown with
that setting's test numbers (each trial evaluates the test split once, at the end, with
the weights chosen on validation). Nothing is chosen while a trial is unfinished or failed.
"""
from __future__ import annotations

import itertools
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from . import results as R
from .sweep_grid import Axis, config_keys, format_value, parse_grid


def suite_grids(spec: Config, path: str, methods: Sequence[str]) -> Dict[str, Dict[str, list]]:
    """The suite's ``grids``: method display name -> {key: values}; a ``ValueError``
    naming the suite when it is not of that form or names a method the suite does not
    run."""
    grids = spec.get('grids', {})
    example = "grids = {'KD': {'model.methods.kd.temperature': [2.0, 4.0, 8.0]}}"
    if not isinstance(grids, dict) or not all(
            isinstance(g, dict) and g and all(isinstance(v, (list, tuple)) for v in g.values())
            for g in grids.values()):
        raise ValueError(f"Suite '{path}': grids must map a method's display name to "
                         f'{{config key: [values]}}, e.g. {example}; got {grids!r}.')
    unknown = [name for name in grids if name not in methods]
    if unknown:
        raise ValueError(f"Suite '{path}': grids name {unknown}, which the suite does not run; "
                         f'its methods: {list(methods)}.')
    return {name: dict(grid) for name, grid in grids.items()}


def grid_axes(cfg: Config, grid: Dict[str, list], option: str) -> List[Axis]:
    """The grid's axes for one method config (``cfg``: with the suite's options), checked
    as ``--grid`` options are (:func:`~kdbench.benchmark.sweep_grid.parse_grid`)."""
    specs = [f"{key}={','.join(format_value(v) for v in values)}"
             for key, values in grid.items()]
    return parse_grid(cfg, specs, {}, option)


def settings(axes: Sequence[Axis]) -> List[Tuple[Any, ...]]:
    """Every combination of the axes' values, the first axis outermost."""
    return list(itertools.product(*(a.values for a in axes)))


def short_name(axes: Sequence[Axis], setting: Sequence[Any]) -> str:
    """``temperature=2.0,loss_weight=1.0``: each key by its last part (the whole key where
    two axes share a last part)."""
    last = [a.key.split('.')[-1] for a in axes]
    names = [part if last.count(part) == 1 else a.key for a, part in zip(axes, last)]
    return ','.join(f'{n}={format_value(v)}' for n, v in zip(names, setting))


def slug(text: str) -> str:
    """``text`` as a file-name part: runs of other characters than letters, digits, ``.``
    and ``-`` become ``_``."""
    return re.sub(r'[^A-Za-z0-9.-]+', '_', text).strip('_')


def recipe_setting(cfg: Config, axes: Sequence[Axis]) -> Optional[Tuple[Any, ...]]:
    """The config's own values of the axes' keys when it validates on a held-out split
    and they are one setting of the grid (its run is then that setting's trial); else
    ``None``."""
    if (cfg.get('validation') or {}).get('split') != 'holdout':
        return None
    known = config_keys(cfg)
    own = tuple(known.get(a.key) for a in axes)
    return own if own in settings(axes) else None


def chosen_row(trials: Sequence[dict], name: str) -> dict:
    """The 'chosen on validation' row of one method and pair, from its trials' rows
    (:meth:`Suite.collect` rows, in grid order, each with its ``setting``): the trial with
    the highest mean validation metric; its test numbers (``chosen``), validation numbers,
    seeds and setting. ``status`` says why nothing is chosen yet."""
    first = trials[0]
    row = dict(first, name=name, kind='chosen', setting='', seeds=[], status='',
               best=R.summarize([]), last=R.summarize([]), chosen=R.summarize([]),
               val=R.summarize([]), seconds=None, work_dir='-')
    unfinished = [t['setting'] for t in trials
                  if t['status'] != 'done' or t['val']['n'] < len(t['seeds'])]
    if unfinished:
        row['status'] = (f'pending: {len(unfinished)} of {len(trials)} settings unfinished '
                         f'or failed ({", ".join(unfinished)})')
        return row
    # max() keeps the first of equal values: ties go to the earlier setting in grid order
    best = max(trials, key=lambda trial: trial['val']['mean'])
    return dict(row, setting=best['setting'], seeds=best['seeds'], status='done',
                chosen=best['chosen'], val=best['val'], work_dir=best['work_dir'],
                name=f"{name} ({best['setting']})")
