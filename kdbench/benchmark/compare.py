"""Two work dirs of the same suite compared: ``results.csv`` rows and every checkpoint,
bitwise (``tools/compare_suite_runs.py``; e.g. a suite run with ``--cohort`` against the
same suite run without it)."""
from __future__ import annotations

import csv
import os
from typing import Any, List

import numpy as np
import torch

from kdbench.utils.checkpoint import load_local_checkpoint

#: The parts of a checkpoint that make a run: weights (and method parameters), optimizer,
#: schedulers and generator states. ``meta`` and ``message_hub`` hold times and names.
CHECKPOINT_KEYS = ('state_dict', 'optimizer', 'param_schedulers', 'random_states')


def differences(first: Any, second: Any, where: str) -> List[str]:
    """Where two nested dicts/lists of tensors, arrays and plain values differ (tensors
    bitwise, with their dtypes); ``[]`` when they are equal."""
    if isinstance(first, dict) and isinstance(second, dict):
        if first.keys() != second.keys():
            return [f'{where}: keys {sorted(map(str, first.keys() ^ second.keys()))} '
                    'in one only']
        return [d for key in first for d in differences(first[key], second[key],
                                                        f'{where}.{key}')]
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        if len(first) != len(second):
            return [f'{where}: {len(first)} against {len(second)} items']
        return [d for index, (a, b) in enumerate(zip(first, second))
                for d in differences(a, b, f'{where}.{index}')]
    if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor):
        same = first.dtype == second.dtype and torch.equal(first, second)
    elif isinstance(first, np.ndarray) and isinstance(second, np.ndarray):
        same = first.dtype == second.dtype and np.array_equal(first, second)
    else:
        same = type(first) is type(second) and first == second
    return [] if same else [f'{where} differs']


def results_rows(work_dir: str) -> List[List[str]]:
    """``results.csv`` of a suite work dir, each run's work dir relative to it."""
    path = os.path.join(work_dir, 'results.csv')
    if not os.path.isfile(path):
        raise FileNotFoundError(f"'{path}' not found: run or collect the suite first "
                                '(tools/benchmark.py SUITE --work-dir DIR [--collect]).')
    with open(path, newline='') as f:
        rows = list(csv.reader(f))
    column = rows[0].index('work_dir')
    for row in rows[1:]:
        row[column] = os.path.relpath(row[column], work_dir)
    return rows


def checkpoints(work_dir: str) -> List[str]:
    """Every ``.pth`` file under ``work_dir``, relative to it, sorted."""
    return sorted(os.path.relpath(os.path.join(folder, name), work_dir)
                  for folder, _, names in os.walk(work_dir)
                  for name in names if name.endswith('.pth'))


def compare_suite_dirs(first: str, second: str) -> List[str]:
    """Every difference between two work dirs of one suite: ``results.csv`` rows, the set
    of checkpoint files and, in each, :data:`CHECKPOINT_KEYS` (bitwise); ``[]`` when the
    runs are the same."""
    found = []
    rows = results_rows(first), results_rows(second)
    found += [f'results.csv row {index}: {a} against {b}'
              for index, (a, b) in enumerate(zip(*rows)) if a != b]
    if len(rows[0]) != len(rows[1]):
        found.append(f'results.csv: {len(rows[0])} against {len(rows[1])} rows')
    files = checkpoints(first), checkpoints(second)
    if files[0] != files[1]:
        found.append(f'checkpoints in one only: {sorted(set(files[0]) ^ set(files[1]))}')
    for name in sorted(set(files[0]) & set(files[1])):
        loaded = [load_local_checkpoint(os.path.join(root, name)) for root in (first, second)]
        found += differences(*[{key: checkpoint.get(key) for key in CHECKPOINT_KEYS}
                               for checkpoint in loaded], name)
    return found
