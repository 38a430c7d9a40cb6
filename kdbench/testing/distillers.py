"""The Distiller of a shipped config, ready to step: random teacher weights, optimizer
wrappers from the config, one random batch."""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper, build_optim_wrapper

from kdbench.apis.config import load_config
from kdbench.paths import config_path
from kdbench.registry import MODELS
from kdbench.utils.amp import enable_amp
from kdbench.utils.weights import without_pretraining

from .batches import Shape
from .teachers import TeacherCheckpoints


@dataclass
class DistillerCase:
    """A built Distiller in training mode, its optimizer wrappers and a batch.

    Args:
        distiller: the Distiller of the config.
        distill_optim: the config's optimizer wrapper over the Distiller.
        student_optim: the same optimizer config over its student alone.
        data: a random batch as a dataloader delivers it (the student's
            :meth:`~kdbench.task.TaskModel.example_batch`, seed 0).
        cuda: whether the case runs on a CUDA device.
    """
    distiller: torch.nn.Module
    distill_optim: OptimWrapper
    student_optim: OptimWrapper
    data: dict
    cuda: bool


@contextlib.contextmanager
def _errors_only() -> Iterator[None]:
    """Only errors from the optimizer builders: no parameter-group table per wrapper
    (``ParamGroupsConstructor``), nor mmengine's per-parameter lines under its own
    constructor."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def build_distiller_case(config: str, shape: Shape,
                         checkpoints: TeacherCheckpoints, options: Optional[dict] = None,
                         device: str = 'cpu') -> DistillerCase:
    """The Distiller of ``config`` (a path, or a path in the checkout:
    :func:`kdbench.paths.config_path`) with random weights: the teacher's from
    ``checkpoints``, no pre-training files (:func:`without_pretraining`), seed 0 for the
    rest. ``options`` are speed switches merged into ``model.speed`` (``amp=True``: mixed
    precision). The batch is the student's ``example_batch`` of ``shape`` (the task
    contract, :mod:`kdbench.task`). Build it inside
    ``DefaultScope.overwrite_default_scope('kdbench')``."""
    options = dict(options or {})
    amp = options.pop('amp', False)
    cfg = load_config(config_path(config))   # imports the config's task plugin
    model_cfg = without_pretraining(cfg.model.to_dict())
    model_cfg['teacher_ckpt'] = checkpoints.path(model_cfg['teacher'], shape)
    model_cfg['speed'] = dict(model_cfg.get('speed') or {}, **options)
    torch.manual_seed(0)
    distiller = MODELS.build(model_cfg).to(device)
    distiller.train()
    if amp:
        enable_amp(cfg, device)
    optim_cfg = cfg.optim_wrapper.to_dict()
    with _errors_only():
        distill_optim = build_optim_wrapper(distiller, optim_cfg)
        student_optim = build_optim_wrapper(distiller.student, optim_cfg)
    data = distiller.student.example_batch(shape.batch, shape.size,
                                           torch.Generator().manual_seed(0))
    return DistillerCase(distiller, distill_optim, student_optim, data,
                         device.startswith('cuda'))
