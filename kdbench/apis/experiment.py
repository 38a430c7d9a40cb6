"""Train and evaluate one config: what tools/train.py, tools/test.py and suites call."""
from __future__ import annotations

import logging
import os
from typing import Dict, List

from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from kdbench.utils.distributed import prepare_distributed
from kdbench.utils.weights import load_task_weights, without_pretraining

from .config import task_model_cfg
from .outputs import tta_text
from .recipe import card_of_config, dataset_text, effective_batch_text, format_short, task_text
from .runner import KDRunner
from .validation import validation_protocol


def train(cfg: Config) -> Runner:
    """Build a Runner from ``cfg`` and train; returns the runner (metrics in its logs)."""
    prepare_distributed(cfg)
    runner = KDRunner.from_cfg(cfg)
    log_run_summary(runner, cfg)
    runner.train()
    return runner


def _logs_info(cfg: Config) -> bool:
    level = cfg.get('log_level', 'INFO')
    level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    return isinstance(level, int) and level <= logging.INFO


def log_run_summary(runner: Runner, cfg: Config) -> None:
    """Log, from rank 0 and at INFO level, what the run trains: the recipe card's short
    form (:func:`~kdbench.apis.recipe.format_short`: models, weight files, losses, data,
    effective batch and lr rule, length, optimizer and schedule, evaluation, and with a
    held-out validation split the test data) of the runner's config, the work dir
    and the log file, which alone holds the environment, the full config and the hook
    order (``KDRunner``; ``verbose_log=True`` prints them too). A card that cannot be built
    is reported as a warning; the batch line is logged in any case."""
    if runner.rank != 0 or not _logs_info(cfg):
        return
    cfg = runner.cfg            # as trained: the validation protocol applied (its split)
    path = cfg.filename or 'the config'
    try:
        lines = format_short(card_of_config(cfg, path, runner.world_size, taps=False))
        if validation_protocol(cfg).holdout:
            lines.append('test data (evaluated once, after the last epoch): '
                         f'{dataset_text(cfg.test_dataloader)}')
    except Exception as err:  # the summary informs; it never stops a run
        runner.logger.warning(f'No recipe summary of {path} ({type(err).__name__}: {err}).')
        lines = [effective_batch_text(cfg.train_dataloader.batch_size, runner.world_size,
                                      cfg.get('auto_scale_lr'))]
    _log_summary(runner, f'Training {os.path.relpath(path) if cfg.filename else path}', lines)


def _log_summary(runner: Runner, title: str, lines: List[str]) -> None:
    """One INFO record: ``title``, then ``lines``, the work dir and the log file."""
    log_file = runner.logger.log_file
    lines = lines + [f'work dir: {runner.work_dir}',
                     f'log file: {log_file} (also the environment, the full config and the '
                     'hook order; --verbose prints them here)' if log_file else
                     'log file: none']
    runner.logger.info(f'{title}:\n' + '\n'.join('  ' + line for line in lines))


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
    if runner.rank == 0 and _logs_info(cfg):
        lines = [f'model: {task_text(cfg.model)}',
                 f'test data: {dataset_text(cfg.test_dataloader)}']
        if hasattr(model, 'tta'):
            lines.append(f'test-time augmentation: {tta_text(model.tta)}')
        config = os.path.relpath(cfg.filename) if cfg.filename else 'the config'
        _log_summary(runner, f'Evaluating {checkpoint} ({config})', lines)
    load_task_weights(model, checkpoint, owner='student', source='CHECKPOINT',
                      trust=runner.trust_checkpoint)
    loop = runner.test_loop
    for metric in loop.evaluator.metrics:      # per-sample writers need the names and order
        if hasattr(metric, 'bind_dataloader'):
            metric.bind_dataloader(loop.dataloader)
    return runner.test()
