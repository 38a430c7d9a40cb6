"""``tools/gpu_check.py``'s report: environment, cases, launchers; JSON and Markdown."""
from __future__ import annotations

import json
import os
import platform
import time
from typing import Optional, Sequence

import torch

from kdbench.hooks.environment import git_commit, package_versions
from kdbench.paths import repo_root

from . import gpu_check, gpu_launchers, overhead


def environment() -> dict:
    """Device, versions (torch, CUDA, cuDNN, Python, packages) and the kdbench commit."""
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return dict(date=time.strftime('%Y-%m-%d %H:%M %Z'), device=overhead.machine(),
                cuda_available=torch.cuda.is_available(),
                gpu_count=torch.cuda.device_count(), torch=torch.__version__,
                cuda=torch.version.cuda, cudnn=cudnn, python=platform.python_version(),
                packages=package_versions(), commit=git_commit(repo_root()))


def check(out_dir: str, smoke: bool, tasks: Sequence[str] = tuple(overhead.TASKS),
          methods: Optional[Sequence[str]] = None, variants: Optional[Sequence[str]] = None,
          launchers: bool = True) -> dict:
    """Run every case, write ``gpu_check.json`` and ``gpu_check.md`` into ``out_dir``;
    returns the report (``passed``: no case and no launcher run failed)."""
    os.makedirs(out_dir, exist_ok=True)
    start = time.perf_counter()
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    settings = gpu_check.Settings.create(smoke, device)
    report = dict(environment=environment(), smoke=smoke,
                  settings=dict(steps=settings.steps, warmup=settings.warmup,
                                overhead_repeats=settings.repeats,
                                tolerances=gpu_check.TOLERANCES,
                                loss_floor=gpu_check.LOSS_FLOOR),
                  cases=gpu_check.run(tasks, settings, methods, variants), launchers=None)
    if launchers:
        report['launchers'] = gpu_launchers.run_launchers(os.path.join(out_dir, 'launchers'))
    failed = [f"{c['task']}/{c['method']}/{c['case']}" for c in report['cases']
              if c['status'] == 'failed']
    if launchers and report['launchers']['status'] != 'ok':
        failed.append('launchers')
    report.update(failed=failed, passed=not failed, wall_s=time.perf_counter() - start)
    with open(os.path.join(out_dir, 'gpu_check.json'), 'w') as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out_dir, 'gpu_check.md'), 'w') as f:
        f.write(markdown(report) + '\n')
    return report


def _number(value: Optional[float], form: str) -> str:
    return '-' if value is None else format(value, form)


def case_row(c: dict) -> str:
    """One Markdown table row of a case."""
    if c['status'] == 'skipped' or 'images_per_s' not in c:
        reason = c.get('note') or c['failures'][0].strip().splitlines()[-1]
        return f"| {c['task']} | {c['method']} | {c['case']} | | | | | | | | {c['status']}: " \
               f"{reason[:120]} |"
    ratio = c['overhead']['ratio']['median'] if c['overhead'] else None
    memory = None if c['peak_mem_bytes'] is None else c['peak_mem_bytes'] / 2 ** 20
    difference = ('-' if c['tolerance'] is None else
                  f"{c['first_loss_rel_diff']:.1e} (<= {c['tolerance']:g})")
    status = c['status'] + ''.join(f'; {f}' for f in c['failures'])
    return (f"| {c['task']} | {c['method']} | {c['case']} | {c['batch']}, {c['input_size']} | "
            f"{c['precision']} | {c['first_losses']['loss']:.4f} | {difference} | "
            f"{_number(c['scaler_skips_after_warmup'], 'd')} | {c['images_per_s']:.1f} | "
            f"{_number(ratio, '.3f')} | {_number(memory, '.0f')} | {status} |")


def markdown(report: dict) -> str:
    """The report as Markdown: an environment line, the cases' table, the launchers."""
    env, settings = report['environment'], report['settings']
    lines = [f"GPU check ({'smoke, ' if report['smoke'] else ''}"
             f"{'PASSED' if report['passed'] else 'FAILED'}): {env['device']}, {env['date']}; "
             f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}, Python "
             f"{env['python']}; kdbench {env['commit']}; {settings['steps']} steps per case, "
             f"warm-up {settings['warmup']}; {report['wall_s']:.0f} s.", '',
             '| task | method | case | batch, size | precision | first-step loss '
             '| vs fp32, rel. (tol.) | scaler skips after warm-up | images/s '
             '| overhead c/(a+b) | peak MiB | status |', '|' + '---|' * 12]
    lines += [case_row(c) for c in report['cases']]
    launch = report['launchers']
    if launch is not None:
        seconds = ', '.join(f'{k} {v:.0f} s' for k, v in launch['seconds'].items())
        same = (launch['metrics_dist'] is not None
                and launch['metrics_dist'] == launch['metrics_single'])
        lines += ['', f"Launchers ({launch['status']}): tools/dist_train.sh {launch['config']} "
                  f"{launch['processes']} ({launch['epochs']} epochs, backend "
                  f"{launch['backend']}); tools/dist_test.sh vs tools/test.py metrics "
                  f"{'identical' if same else 'NOT identical'}: {launch['metrics_dist']}; "
                  f'{seconds}.' + ''.join(f' {f}.' for f in launch['failures'])]
    return '\n'.join(lines)
