"""Run a suite: a teacher, then students distilled from it; report a results table.

A suite is a Python file (read with mmengine's Config) holding::

    teacher = dict(name='teacher', config='teacher_cfg.py')
    runs = [dict(name='baseline', config='student_cfg.py'),
            dict(name='KD', config='kd_cfg.py'), ...]
    baseline = 'baseline'          # the run the others are compared with
    metric = 'accuracy/top1'

Config paths are relative to the suite file. Runs whose model has a ``teacher_ckpt``
get the teacher's final checkpoint. Every run is evaluated from its last checkpoint with
the plain task model (no teacher), as ``tools/test.py`` does.
"""
from __future__ import annotations

import json
import os
import time
from typing import Dict, List

from mmengine.config import Config
from mmengine.runner import find_latest_checkpoint

from .config import load_config
from .experiment import evaluate, train


def _run(name: str, config: str, work_dir: str, teacher_ckpt: str = '') -> Dict:
    cfg = load_config(config, work_dir=os.path.join(work_dir, name))
    if teacher_ckpt and 'teacher_ckpt' in cfg.model:
        cfg.model.teacher_ckpt = teacher_ckpt
    cfg.log_level = 'WARNING'
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(type='ProgressHook', name=name)]
    start = time.perf_counter()
    runner = train(cfg)
    seconds = time.perf_counter() - start
    checkpoint = find_latest_checkpoint(cfg.work_dir)
    best = runner.message_hub.get_info('best_score')
    eval_cfg = load_config(config, work_dir=cfg.work_dir)
    eval_cfg.log_level = 'WARNING'
    metrics = evaluate(eval_cfg, checkpoint)
    return dict(name=name, config=config, checkpoint=checkpoint, metrics=metrics,
                best=best, seconds=seconds)


def run_suite(suite_path: str, work_dir: str) -> List[Dict]:
    """Train and evaluate every run of the suite; write ``results.md`` and
    ``results.json`` to ``work_dir`` and return the rows."""
    suite = Config.fromfile(suite_path)
    here = os.path.dirname(os.path.abspath(suite_path))
    jobs = [suite.teacher, *suite.runs]
    rows = []
    teacher_ckpt = ''
    for i, job in enumerate(jobs, 1):
        print(f'== [{i}/{len(jobs)}] {job["name"]}: {job["config"]}', flush=True)
        row = _run(job['name'], os.path.join(here, job['config']), work_dir, teacher_ckpt)
        teacher_ckpt = teacher_ckpt or row['checkpoint']
        rows.append(row)
    table = results_table(rows, suite.baseline, suite.metric)
    os.makedirs(work_dir, exist_ok=True)
    with open(os.path.join(work_dir, 'results.md'), 'w') as f:
        f.write(table + '\n')
    with open(os.path.join(work_dir, 'results.json'), 'w') as f:
        json.dump(rows, f, indent=2)
    print(table, flush=True)
    return rows


def results_table(rows: List[Dict], baseline: str, metric: str) -> str:
    """Markdown table: run, metric at the last epoch, best during training, difference
    from the baseline (last epoch), wall time."""
    ref = next(r['metrics'][metric] for r in rows if r['name'] == baseline)
    lines = [f'| run | {metric} (last) | best | vs {baseline} | wall time |',
             '|---|---|---|---|---|']
    for r in rows:
        value = r['metrics'][metric]
        best = f"{r['best']:.2f}" if r['best'] is not None else '-'
        lines.append(f"| {r['name']} | {value:.2f} | {best} | {value - ref:+.2f} | "
                     f"{r['seconds']:.0f} s |")
    return '\n'.join(lines)
