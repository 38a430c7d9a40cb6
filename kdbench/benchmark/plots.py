"""Plots of benchmark results and of a run's training curves (from mmengine's logs)."""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from .results import headline, read_scalars, scalar_log  # noqa: E402


Bars = Dict[tuple, Dict[str, float]]


def method_bars(rows: Sequence[dict]) -> Tuple[Dict[str, float], Dict[str, float], Bars]:
    """What :func:`plot_methods_vs_baseline` draws: baselines by student, teachers by
    teacher, and per (teacher, student) pair each method's bar, all the mean over seeds of
    the row's :func:`~kdbench.benchmark.results.headline` number (best epoch on the test
    split, or chosen on validation then tested); a grid's chosen setting is the bar
    ``<method> (chosen)``; trials are left out."""
    baselines = {r['student']: headline(r)['mean'] for r in rows if r['role'] == 'baseline'}
    teachers = {r['teacher']: headline(r)['mean'] for r in rows if r['role'] == 'teacher'}
    pairs: Bars = defaultdict(dict)
    for r in rows:
        kind = r.get('kind', 'run')
        name = r['role'] + (' (chosen)' if kind == 'chosen' else '')
        if r['role'] not in ('teacher', 'baseline') and kind != 'trial' and \
                headline(r)['mean'] is not None:
            pairs[(r['teacher'], r['student'])][name] = headline(r)['mean']
    return baselines, teachers, pairs


def plot_methods_vs_baseline(rows: Sequence[dict], path: str, metric: str) -> str:
    """Grouped bars per teacher-student pair: the baseline student and each method
    (:func:`method_bars`); the teacher as a dashed line. Returns ``path``."""
    baselines, teachers, pairs = method_bars(rows)
    methods = list(dict.fromkeys(m for values in pairs.values() for m in values))
    names = ['baseline', *methods]
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(pairs) * len(names) / 3), 3.5))
    width = 0.8 / len(names)
    for p, ((teacher, student), values) in enumerate(sorted(pairs.items())):
        heights = [baselines.get(student), *[values.get(m) for m in methods]]
        for i, h in enumerate(heights):
            if h is not None:
                ax.bar(p + i * width, h, width, color=f'C{i}',
                       label=names[i] if p == 0 else None)
        if teachers.get(teacher) is not None:
            ax.hlines(teachers[teacher], p - width / 2, p + 0.8 - width / 2, colors='k',
                      linestyles='--', label='teacher' if p == 0 else None)
    ax.set_xticks([p + 0.4 - width / 2 for p in range(len(pairs))],
                  [f'{t}\n-> {s}' for t, s in sorted(pairs)], fontsize=8)
    values = [v for v in [*baselines.values(), *teachers.values(),
                          *[x for d in pairs.values() for x in d.values()]] if v is not None]
    if values:
        ax.set_ylim(max(0.0, min(values) - 5), min(100.0, max(values) + 2))
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_training_curves(work_dir: str, path: str) -> str:
    """Loss terms per iteration and validation metrics per epoch of the latest run in
    ``work_dir``. Returns ``path``."""
    log = scalar_log(work_dir)
    if not log:
        raise FileNotFoundError(f"No mmengine scalars.json under '{work_dir}/*/vis_data/': "
                                'is it a training work dir?')
    records = read_scalars(log)
    losses: Dict[str, List[tuple]] = defaultdict(list)
    metrics: Dict[str, List[tuple]] = defaultdict(list)
    timing = {'data_time', 'time', 'step', 'epoch', 'iter', 'lr'}
    for r in records:
        if 'lr' in r:             # a training record
            for key in (k for k in r if 'loss' in k):
                losses[key].append((r['step'], r[key]))
        else:                     # a validation record
            for key in (k for k in r if k not in timing):
                metrics[key].append((r['step'], r[key]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for key, points in sorted(losses.items()):
        left.plot(*zip(*points), label=key)
    left.set_xlabel('iteration')
    left.set_yscale('log')
    left.set_title('training losses')
    for key, points in sorted(metrics.items()):
        right.plot(*zip(*points), marker='o', label=key)
    right.set_xlabel('epoch (validation)')
    right.set_title('validation')
    for ax in (left, right):
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(os.path.basename(os.path.normpath(work_dir)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_sweep(keys: Sequence[str], points: Sequence[tuple], path: str, metric: str,
               chosen: Optional[tuple] = None) -> str:
    """A sweep's validation metric against each swept key (one panel per key, its values
    evenly spaced in grid order): a line per combination of the other keys through the
    means over seeds, each seed a dot, the chosen setting a star. ``points`` are
    ``(setting, [val per finished seed])`` with a setting's values in ``keys`` order.
    Returns ``path``."""
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for index, (key, ax) in enumerate(zip(keys, axes[0])):
        values = list(dict.fromkeys(setting[index] for setting, _ in points))
        lines: Dict[tuple, List[tuple]] = defaultdict(list)
        for setting, vals in points:
            x = values.index(setting[index])
            ax.plot([x] * len(vals), vals, '.', color='0.6')
            if vals:
                mean = sum(vals) / len(vals)
                lines[setting[:index] + setting[index + 1:]].append((x, mean))
                if chosen is not None and tuple(setting) == tuple(chosen):
                    ax.plot([x], [mean], '*', color='C3', markersize=14, zorder=3,
                            label='chosen')
        others = [k for k in keys if k != key]
        for rest, line in lines.items():
            label = ', '.join(f'{k}={v}' for k, v in zip(others, rest)) or 'mean over seeds'
            ax.plot(*zip(*line), marker='o', label=label)
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel(key, fontsize=8)
        ax.set_ylabel(f'{metric} (validation)')
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
