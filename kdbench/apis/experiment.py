"""Train and evaluate one config: what tools/train.py, tools/test.py and suites call."""
from __future__ import annotations

from typing import Dict

from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner

from kdbench.utils.checkpoint import load_task_weights

from .config import task_model_cfg


def train(cfg: Config) -> Runner:
    """Build a Runner from ``cfg`` and train; returns the runner (metrics in its logs)."""
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def evaluate(cfg: Config, checkpoint: str) -> Dict[str, float]:
    """Evaluate the task model of ``cfg`` (a distillation config's student, without its
    teacher) with the weights in ``checkpoint``; returns the test metrics."""
    cfg = cfg.copy()
    cfg.model = task_model_cfg(cfg.model)
    cfg.load_from = None
    cfg.resume = False
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    load_task_weights(model, checkpoint, owner='student', source='CHECKPOINT')
    return runner.test()
