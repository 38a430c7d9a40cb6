"""Distributed runs: mmengine's launchers (NCCL) on GPUs, and a gloo path on CPU processes.

mmengine's ``--launcher pytorch`` calls ``torch.cuda.set_device`` and gives DDP
``device_ids``, both of which fail without a GPU. On a machine without CUDA,
:func:`prepare_distributed` starts the process group with gloo before the Runner is built
(the Runner then skips its own initialisation) and :class:`KDDistributedDataParallel`
leaves ``device_ids`` out for CPU modules, so the same commands run on CPU processes.
"""
from __future__ import annotations

import datetime
import gc
import os
from typing import List

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from torch.nn.parallel import DistributedDataParallel

from kdbench.registry import MODEL_WRAPPERS


TIMEOUT_KEY = 'env_cfg.dist_cfg.timeout'
#: Seconds a collective may wait for the other ranks when the config sets no timeout.
DEFAULT_TIMEOUT = 1800


def process_group_timeout(cfg: Config) -> float:
    """``env_cfg.dist_cfg.timeout`` in seconds (default :data:`DEFAULT_TIMEOUT`), checked."""
    dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg') or {}
    timeout = dist_cfg.get('timeout', DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f'{TIMEOUT_KEY} must be a number of seconds > 0 (how long a '
                         f'collective may wait for the other ranks), got {timeout!r}; e.g. '
                         f'--cfg-options {TIMEOUT_KEY}={DEFAULT_TIMEOUT}.')
    return timeout


def prepare_distributed(cfg: Config) -> None:
    """Check the process-group timeout and set up the CPU gloo path for ``cfg.launcher``.

    GPU runs are left to mmengine, which reads ``env_cfg.dist_cfg`` (the timeout is set
    there when the config has none).
    On CPU, only torchrun (``launcher='pytorch'``) is supported; the gloo group gets
    ``env_cfg.dist_cfg.timeout``; SyncBN needs GPUs, so ``sync_bn`` is switched off there
    (with a warning).
    """
    if cfg.get('launcher', 'none') == 'none':
        return
    timeout = process_group_timeout(cfg)
    env_cfg = dict(cfg.get('env_cfg') or {})
    cfg.env_cfg = dict(env_cfg, dist_cfg=dict(env_cfg.get('dist_cfg') or {}, timeout=timeout))
    if torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise RuntimeError(f"--launcher {cfg.launcher} needs GPUs; on CPU processes use "
                           'torchrun (tools/dist_train.sh, --launcher pytorch).')
    if 'RANK' not in os.environ:
        raise RuntimeError('--launcher pytorch expects the environment torchrun sets (RANK, '
                           'WORLD_SIZE, MASTER_ADDR); start with tools/dist_train.sh.')
    if not dist.is_initialized():
        dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=timeout))
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    if cfg.get('sync_bn'):
        print_log('SyncBatchNorm needs GPUs: sync_bn is ignored on CPU processes (each '
                  'process normalises with its own batch statistics).', logger='current',
                  level=30)
        cfg.sync_bn = None


def finish_distributed() -> None:
    """Tear the process group down once a tool's work is done (all ranks, success path).

    The group must die here, while the interpreter is fully alive: its gloo threads
    (``pt_gloo_runloop``, ``gloo_tcp_loop``) are stopped only when the last reference to
    it goes, and torn down during interpreter finalisation they can abort a rank that
    finished its work (SIGABRT, 'terminate called without an active exception'; see
    docs/distributed.md). ``destroy_process_group`` alone drops only c10d's references:
    the DDP wrapper's reducer holds the group too, and mmengine's runner sits in
    reference cycles, so the cycles are collected first (the tool has dropped its
    runner). A gloo thread still alive afterwards is reported as a warning.
    """
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
        left = gloo_threads()
        if left:
            print_log(f'The process group outlived destroy_process_group (its threads '
                      f'{", ".join(left)} still run): something still references it (a '
                      'DDP wrapper, a runner); this process may abort at exit.',
                      logger='current', level=30)


def gloo_threads() -> List[str]:
    """Names of this process's gloo threads (read from /proc; [] where there is none)."""
    try:
        tasks = os.listdir('/proc/self/task')
    except OSError:
        return []
    names = []
    for task in tasks:
        try:
            with open(f'/proc/self/task/{task}/comm') as f:
                names.append(f.read().strip())
        except OSError:
            continue
    return sorted(name for name in names if 'gloo' in name)


@MODEL_WRAPPERS.register_module()
class KDDistributedDataParallel(MMDistributedDataParallel):
    """mmengine's DDP wrapper, usable on CPU processes, that keeps the teacher out of DDP.

    A module on the CPU gets no ``device_ids``. The parameters and buffers of a
    Distiller's ``teacher`` are excluded from DDP: never broadcast, never part of the
    gradient all-reduce (every process loads the same teacher checkpoint).
    ``find_unused_parameters`` stays off: every trained parameter must get a gradient in
    every step.
    """

    def __init__(self, module: torch.nn.Module, **kwargs):
        first = next(module.parameters(), None)
        if first is not None and first.device.type == 'cpu':
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        teacher = getattr(module, 'teacher', None)
        if teacher is not None:
            names = [f'teacher.{n}' for n, _ in teacher.named_parameters()]
            names += [f'teacher.{n}' for n, _ in teacher.named_buffers()]
            DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, names)
        super().__init__(module=module, **kwargs)
