"""Training progress for the distillation methods (warm-ups, schedules)."""
from __future__ import annotations

import math

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop

from kdbench.distill.base import TrainingProgress
from kdbench.registry import HOOKS


def training_progress(runner) -> TrainingProgress:
    """The :class:`~kdbench.distill.base.TrainingProgress` of the iteration about to run.

    Derived from the runner's counters alone (restored from the checkpoint on resume), so a
    resumed run sees the same values as an uninterrupted one.
    """
    if isinstance(runner.train_loop, EpochBasedTrainLoop):
        return TrainingProgress(runner.epoch + 1, runner.iter, runner.max_epochs,
                                runner.max_iters)
    per_epoch = max(len(runner.train_dataloader), 1)
    return TrainingProgress(runner.iter // per_epoch + 1, runner.iter,
                            math.ceil(runner.max_iters / per_epoch), runner.max_iters)


@HOOKS.register_module()
class MethodProgressHook(Hook):
    """Sets ``progress`` on every distillation method before each training iteration.

    A method reads ``self.progress.epoch`` (from 1), ``.iter`` (from 0), ``.max_epochs``
    and ``.max_iters`` in its ``forward``; models without methods are left alone.
    """

    priority = 'ABOVE_NORMAL'

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        methods = getattr(model, 'methods', None)
        if not methods:
            return
        progress = training_progress(runner)
        for method in methods.values():
            method.progress = progress
