"""The launcher part of ``tools/gpu_check.py``: torchrun training and evaluation.

``tools/dist_train.sh CONFIG 1`` trains the digits demo's KD student for two epochs
(1 process: NCCL on a GPU, gloo on CPU; a random teacher checkpoint), then the final
checkpoint is evaluated by ``tools/dist_test.sh CONFIG CKPT 1`` and by ``tools/test.py``:
the two must print identical metrics. The launchers run in subprocesses with this
interpreter first on ``PATH`` (and in ``$PYTHON``) and this checkout first on
``PYTHONPATH``; their logs are kept in the output folder.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from typing import List, Optional

import torch
from mmengine.registry import DefaultScope

from kdbench.apis.config import load_config
from kdbench.paths import repo_root
from kdbench.testing import Shape, TeacherCheckpoints

DEMO_CONFIG = 'configs/demo/kd_resnet20_resnet8_digits.py'
DEMO_SHAPE = Shape(2, 16)      # the digits images' side


def free_port() -> int:
    """A TCP port nothing listens on now (for torchrun's rendezvous)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def launcher_env(cache_dir: str) -> dict:
    """The subprocesses' environment: this interpreter and this checkout first."""
    env = dict(os.environ, PYTHON=sys.executable, NO_ALBUMENTATIONS_UPDATE='1',
               KDBENCH_CACHE_DIR=cache_dir, PORT=str(free_port()))
    env['PATH'] = os.pathsep.join([os.path.dirname(sys.executable), env.get('PATH', '')])
    env['PYTHONPATH'] = os.pathsep.join(p for p in (repo_root(), env.get('PYTHONPATH')) if p)
    return env


def run_logged(command: List[str], log_path: str, timeout: int) -> tuple:
    """Run ``command`` in the repository root; its output goes to ``log_path``.
    Returns ``(exit status, output, seconds)``; a timeout gives status ``'timeout'``."""
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=repo_root(),
                              env=launcher_env(os.path.dirname(log_path)),
                              capture_output=True, text=True, timeout=timeout)
        status, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as error:
        status = 'timeout'
        output = ''.join(part.decode(errors='replace') if isinstance(part, bytes) else part or ''
                         for part in (error.stdout, error.stderr))
    with open(log_path, 'w') as f:
        f.write(output)
    return status, output, time.perf_counter() - start


def last_metrics(output: str) -> Optional[dict]:
    """The last JSON object the test tools print (their metrics), or ``None``."""
    try:
        return json.loads(output[output.rindex('{'):output.rindex('}') + 1])
    except ValueError:
        return None


def dist_backend(output: str) -> Optional[str]:
    """The process-group backend in the launched run's logged environment."""
    match = re.search(r"dist_cfg: \{'backend': '(\w+)'", output)
    return match.group(1) if match else None


def run_launchers(out_dir: str, epochs: int = 2, timeout: int = 600) -> dict:
    """Train with ``dist_train.sh`` on 1 process, evaluate with ``dist_test.sh`` and
    ``test.py``; returns the result (``status``, ``failures``, metrics, logs)."""
    os.makedirs(out_dir, exist_ok=True)
    expected = 'nccl' if torch.cuda.is_available() else 'gloo'
    result = dict(config=DEMO_CONFIG, processes=1, epochs=epochs, expected_backend=expected,
                  backend=None, metrics_dist=None, metrics_single=None, seconds={},
                  failures=[], logs=out_dir)
    with DefaultScope.overwrite_default_scope('kdbench'):
        cfg = load_config(os.path.join(repo_root(), DEMO_CONFIG))   # what the launchers run
        teacher = TeacherCheckpoints(out_dir).path(cfg.model.teacher.to_dict(), DEMO_SHAPE)
    tools = os.path.join(repo_root(), 'tools')
    work_dir = os.path.join(out_dir, 'train')
    status, output, result['seconds']['dist_train'] = run_logged(
        ['bash', os.path.join(tools, 'dist_train.sh'), DEMO_CONFIG, '1', '--work-dir',
         work_dir, '--cfg-options', f'model.teacher_ckpt={teacher}',
         f'train_cfg.max_epochs={epochs}'], os.path.join(out_dir, 'dist_train.log'), timeout)
    result['backend'] = dist_backend(output)
    checkpoint = os.path.join(work_dir, f'epoch_{epochs}.pth')
    if status != 0 or not os.path.isfile(checkpoint):
        result['failures'].append(f'dist_train.sh exit status {status}, no {checkpoint} '
                                  '(see dist_train.log)')
        return dict(result, status='failed')
    if result['backend'] != expected:
        result['failures'].append(f"dist_train.sh ran with backend {result['backend']}, "
                                  f'expected {expected}')
    runs = dict(dist=['bash', os.path.join(tools, 'dist_test.sh'), DEMO_CONFIG, checkpoint,
                      '1'],
                single=[sys.executable, os.path.join(tools, 'test.py'), DEMO_CONFIG,
                        checkpoint])
    for name, command in runs.items():
        status, output, result['seconds'][f'test_{name}'] = run_logged(
            command + ['--work-dir', os.path.join(out_dir, f'test_{name}')],
            os.path.join(out_dir, f'test_{name}.log'), timeout)
        result[f'metrics_{name}'] = last_metrics(output) if status == 0 else None
        if result[f'metrics_{name}'] is None:
            result['failures'].append(f'test ({name}) exit status {status}, no metrics '
                                      f'(see test_{name}.log)')
    if result['metrics_dist'] is not None and result['metrics_single'] is not None \
            and result['metrics_dist'] != result['metrics_single']:
        result['failures'].append('dist_test.sh and test.py metrics differ')
    return dict(result, status='failed' if result['failures'] else 'ok')
