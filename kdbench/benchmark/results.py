"""Benchmark results: metrics read from run logs, the papers' reference numbers, tables."""
from __future__ import annotations

import csv
import glob
import json
import os
import statistics
from typing import Dict, List, Optional, Sequence

REFERENCE_COLUMNS = ('dataset', 'teacher', 'student', 'method', 'metric', 'value', 'source',
                     'table', 'protocol')


def scalar_log(work_dir: str) -> str:
    """The ``scalars.json`` mmengine wrote for the latest run in ``work_dir`` ('' if none)."""
    logs = sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json')))
    return logs[-1] if logs else ''


def read_scalars(path: str) -> List[dict]:
    """The records of an mmengine ``scalars.json`` (one JSON object per line)."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def metric_history(work_dir: str, metric: str) -> List[float]:
    """Every validation value of ``metric`` logged in ``work_dir``, in step order. A resumed
    run (``--resume``, a requeued job) logs each attempt in its own folder: the attempts
    are read oldest first and a step logged again keeps its latest value."""
    by_step: Dict[int, float] = {}
    for path in sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        by_step.update((r['step'], r[metric]) for r in read_scalars(path) if metric in r)
    return [by_step[step] for step in sorted(by_step)]


def final_metrics(work_dir: str) -> Optional[dict]:
    """The run's ``final_metrics.json`` (written at the end of training by
    :class:`~kdbench.hooks.FinalMetricsHook`), or ``None`` when it has none."""
    path = os.path.join(work_dir, 'final_metrics.json')
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def seed_numbers(work_dir: str, metric: str) -> Dict[str, object]:
    """A finished run's numbers under its protocol: ``protocol`` (``'test'``: validated on
    the test split, the papers' protocol; ``'holdout'``: on a part of the training set),
    then with ``'test'`` the ``best`` and ``last`` epoch's ``metric`` on the test split,
    with ``'holdout'`` ``chosen``: the test split's ``metric`` of the weights chosen on
    validation, and ``val``: their validation ``metric`` (``final_metrics.json``). Empty
    when the run logged no ``metric``."""
    final = final_metrics(work_dir)
    if final is not None and final.get('protocol') == 'holdout':
        value = final.get('test', {}).get(metric)
        val = final.get('val', {}).get(metric)
        return {} if value is None else dict(protocol='holdout', chosen=value, **(
            {} if val is None else dict(val=val)))
    history = metric_history(work_dir, metric)
    return dict(protocol='test', best=max(history), last=history[-1]) if history else {}


#: What each number of the tables is, by its column.
PROTOCOL_LEGEND = ('Protocols: **best** = best epoch on the test split (validated on it every '
                   "epoch: the papers' protocol), **last** = last epoch on the test split, "
                   '**chosen** = chosen on a validation split held out of the training set, '
                   'then the test split once (docs/validation.md). In the matrix, chosen '
                   'numbers are marked †; a "chosen on validation" line gives, per method '
                   'with a grid, the setting chosen on validation (docs/benchmarks.md).')


def summarize(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (``None`` for fewer than two values)."""
    if not values:
        return dict(mean=None, std=None, n=0)
    std = statistics.stdev(values) if len(values) > 1 else None
    return dict(mean=statistics.fmean(values), std=std, n=len(values))


def load_reference(path: str) -> List[Dict[str, str]]:
    """Rows of the reference-results CSV (lines starting with ``#`` are comments)."""
    with open(path, newline='') as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith('#')))
    for i, row in enumerate(rows, 2):
        missing = [c for c in REFERENCE_COLUMNS if c not in row]
        if missing or not row['source'] or not row['value']:
            raise ValueError(f"Reference file '{path}', row {i}: needs the columns "
                             f'{REFERENCE_COLUMNS} with a value and a source; got {row}.')
    return rows


#: The model columns that identify a reference row, per row kind (default: the pair).
_IDENTIFIED_BY = {'teacher': ('teacher',), 'baseline': ('student',)}


def reference_for(rows: Sequence[dict], dataset: str, teacher: str, student: str,
                  method: str, metric: str) -> Optional[dict]:
    """The first reference row matching the run (teachers match on ``teacher`` alone,
    baselines on ``student`` alone)."""
    run = dict(dataset=dataset, teacher=teacher, student=student, method=method, metric=metric)
    keys = ('dataset', 'method', 'metric') + _IDENTIFIED_BY.get(method, ('teacher', 'student'))
    return next((row for row in rows if all(row[k] == run[k] for k in keys)), None)


def _fmt(value: Optional[float], std: Optional[float] = None) -> str:
    if value is None:
        return '-'
    return f'{value:.2f}' + (f' ± {std:.2f}' if std is not None else '')


def _delta(ours: Optional[float], ref: Optional[float]) -> str:
    return f'{ours - ref:+.2f}' if ours is not None and ref is not None else '-'


def chosen_only(row: dict) -> bool:
    """Whether the row's numbers are chosen on validation only (protocol 'holdout': no
    best epoch on the test split)."""
    return row['best']['mean'] is None and _chosen(row)['mean'] is not None


def headline(row: dict) -> dict:
    """The row's summary that its protocol reports: the best epoch (validated on the test
    split), else the test numbers of the weights chosen on validation."""
    return _chosen(row) if chosen_only(row) else row['best']


def delta_to_baseline(ours: dict, baseline: Optional[dict]) -> str:
    """Difference of two summaries (``mean``, ``std``, ``n``) of one protocol, with the
    standard error of the difference of means, ``sqrt(s1^2/n1 + s2^2/n2)``, when both
    have a spread (two seeds or more)."""
    if baseline is None:
        return '-'
    text = _delta(ours['mean'], baseline['mean'])
    if text != '-' and ours.get('std') is not None and baseline.get('std') is not None:
        error = (ours['std'] ** 2 / ours['n'] + baseline['std'] ** 2 / baseline['n']) ** 0.5
        text += f' ± {error:.2f}'
    return text


def _paper_value(row: dict) -> Optional[float]:
    return float(row['paper']['value']) if row.get('paper') else None


def _chosen(row: dict) -> dict:
    """The row's chosen-on-validation summary (none for rows without one)."""
    return row.get('chosen') or dict(mean=None, std=None, n=0)


def _ours_for_paper(row: dict) -> Optional[float]:
    """Our best- or last-epoch mean, whichever the paper's protocol reports (best epoch
    when there is no paper value); the chosen-on-validation mean for runs that have only
    that (protocol 'holdout')."""
    if chosen_only(row):
        return _chosen(row)['mean']
    protocol = row['paper']['protocol'].lower() if row.get('paper') else ''
    return row['last' if 'last' in protocol else 'best']['mean']


def markdown_table(rows: Sequence[dict]) -> str:
    """One line per run: seeds with results of the run's seeds (``seeds done``, e.g.
    ``2/5``), ours (best and last epoch, mean ± std over those seeds), the difference from
    the student's baseline (best, ± the standard error of that difference over seeds,
    :func:`delta_to_baseline`), the paper's value (with its source and protocol)
    and our difference from it (on the paper's protocol), ours chosen on validation then
    tested (runs with a held-out validation split, mean ± std), wall time, status and work
    dir (:data:`PROTOCOL_LEGEND`)."""
    baseline = {r['student']: r for r in rows if r['role'] == 'baseline'}
    lines = ['| run | seeds done | best | last | vs baseline | paper | Δ paper | source | '
             'chosen | time | status |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        paper = r.get('paper')
        source = (f"{paper['source']} {paper['table']} ({paper['protocol']})"
                  .replace('  ', ' ') if paper else '-')
        status = f"[done]({r['work_dir']})" if r['status'] == 'done' else r['status']
        seconds = f"{r['seconds']:.0f} s" if r.get('seconds') else '-'
        done = f"{r['best']['n'] + _chosen(r)['n']}/{len(r['seeds'])}"
        lines.append(
            f"| {r['name']} | {done} | {_fmt(r['best']['mean'], r['best']['std'])} | "
            f"{_fmt(r['last']['mean'], r['last']['std'])} | "
            f"{_vs_baseline(r, baseline.get(r['student'])) if r['teacher'] else '-'}"
            f" | {_fmt(_paper_value(r))} | {_delta(_ours_for_paper(r), _paper_value(r))} | "
            f"{source} | {_fmt(_chosen(r)['mean'], _chosen(r)['std'])} | {seconds} | "
            f'{status} |')
    return '\n'.join(lines)


def _vs_baseline(row: dict, baseline: Optional[dict]) -> str:
    """:func:`delta_to_baseline` of the two rows' :func:`headline` numbers, when they
    follow one protocol ('-' else)."""
    if baseline is None or chosen_only(row) != chosen_only(baseline):
        return '-'
    return delta_to_baseline(headline(row), headline(baseline))


def matrix_table(rows: Sequence[dict]) -> str:
    """The papers' layout: one line per teacher-student pair, a column per method; each
    cell is ours (mean over seeds, on the paper's protocol: best or last epoch; best where
    no paper value exists; marked † when chosen on validation, for runs with only that)
    with the paper's value in brackets."""
    def cell(row: Optional[dict]) -> str:
        if row is None:
            return '-'
        paper = _paper_value(row)
        mark = '†' if chosen_only(row) else ''
        return _fmt(_ours_for_paper(row)) + mark + (f' ({paper:.2f})' if paper is not None
                                                    else '')

    by_role = {(r['role'], r['teacher'], r['student']): r for r in rows
               if r.get('kind', 'run') == 'run'}
    chosen = {(r['role'], r['teacher'], r['student']): r for r in rows
              if r.get('kind') == 'chosen'}
    methods = list(dict.fromkeys(r['role'] for r in rows
                                 if r['role'] not in ('teacher', 'baseline')))
    pairs = list(dict.fromkeys((r['teacher'], r['student']) for r in rows if r['student']
                               and r['teacher']))
    lines = ['| teacher -> student | teacher | student | ' + ' | '.join(methods) + ' |',
             '|---|---|---|' + '---|' * len(methods)]
    for teacher, student in pairs:
        cells = [cell(by_role.get(('teacher', teacher, ''))),
                 cell(by_role.get(('baseline', '', student)))]
        cells += [cell(by_role.get((m, teacher, student))) for m in methods]
        lines.append(f'| {teacher} -> {student} | ' + ' | '.join(cells) + ' |')
        if any((m, teacher, student) in chosen for m in methods):
            cells = [cell(chosen.get((m, teacher, student))) for m in methods]
            lines.append(f'| {teacher} -> {student}, chosen on validation | | | '
                         + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_results_csv(rows: Sequence[dict], path: str) -> None:
    """``results.csv``: one line per run and seed with its metric under its ``protocol``
    (``test``: ``best`` and ``last`` epoch on the test split; ``holdout``: ``chosen`` on
    validation, then the test split) and status."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['run', 'role', 'teacher', 'student', 'seed', 'metric', 'best', 'last',
                         'paper', 'status', 'work_dir', 'error', 'protocol', 'chosen',
                         'val', 'setting'])
        for r in rows:
            for seed in r['seeds']:
                writer.writerow([r['name'], r['role'], r['teacher'], r['student'],
                                 seed['seed'], r['metric'], seed.get('best', ''),
                                 seed.get('last', ''),
                                 r['paper']['value'] if r.get('paper') else '',
                                 seed['status'], seed['work_dir'], seed.get('error', ''),
                                 seed.get('protocol', ''), seed.get('chosen', ''),
                                 seed.get('val', ''), r.get('setting', '')])
