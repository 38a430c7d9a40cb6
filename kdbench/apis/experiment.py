"""Train and evaluate one config: what tools/train.py, tools/test.py and suites call."""
from __future__ import annotations

from typing import Dict

from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from kdbench.utils.distributed import prepare_distributed
from kdbench.utils.weights import load_task_weights, without_pretraining

from .config import task_model_cfg
from .runner import KDRunner


def train(cfg: Config) -> Runner:
    """Build a Runner from ``cfg`` and train; returns the runner (metrics in its logs)."""
    prepare_distributed(cfg)
    runner = KDRunner.from_cfg(cfg)
    log_batch_size(runner, cfg)
    runner.train()
    return runner


def log_batch_size(runner: Runner, cfg: Config) -> None:
    """Log the effective batch size and whether the lr is scaled to it."""
    per_process = cfg.train_dataloader.batch_size
    scale = cfg.get('auto_scale_lr') or {}
    rule = (f"lr scaled linearly from base batch {scale['base_batch_size']}"
            if scale.get('enable') else
            f"lr as configured (recipe batch {scale.get('base_batch_size', '?')}; "
            '--cfg-options auto_scale_lr.enable=True scales it linearly)')
    runner.logger.info(f'Effective batch size {per_process * runner.world_size} = '
                       f'{per_process} per process x {runner.world_size} processes; {rule}.')


def evaluate(cfg: Config, checkpoint: str) -> Dict[str, float]:
    """Evaluate the task model of ``cfg`` (a distillation config's student, without its
    teacher) with the weights in ``checkpoint``; returns the test metrics. Pre-training
    weights (``encoder_ckpt``, ``weights``, ``Pretrained`` init) are not loaded: the
    checkpoint replaces them."""
    cfg = cfg.copy()
    cfg.model = without_pretraining(task_model_cfg(cfg.model))
    cfg.load_from = None
    cfg.resume = False
    prepare_distributed(cfg)
    runner = KDRunner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    load_task_weights(model, checkpoint, owner='student', source='CHECKPOINT',
                      trust=runner.trust_checkpoint)
    loop = runner.test_loop
    for metric in loop.evaluator.metrics:      # per-sample writers need the names and order
        if hasattr(metric, 'bind_dataloader'):
            metric.bind_dataloader(loop.dataloader)
    return runner.test()
