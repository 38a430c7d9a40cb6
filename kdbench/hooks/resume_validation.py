"""A run resumed from a checkpoint written before that step's validation validates first.

The ``CheckpointHook`` writes ``epoch_N.pth`` at the end of epoch N, before that epoch's
validation, and writes it again after the validation only when the validation found a new
best score (``save_best``). Validation draws from the training process's torch generator
(a dataloader draws its base seed from it when it starts iterating), so the generator
states in a checkpoint written before the validation are not those the run trained epoch
N + 1 with. mmengine resumes at epoch N + 1 without validating epoch N: a run stopped
during that validation, or resumed from a checkpoint that validation did not write again,
would train on a different random stream than the uninterrupted run.

:class:`ResumeValidationHook` reads where in the loop the checkpoint was written
(mmengine's ``loop_stage`` of the checkpoint's message hub: ``'val'`` when the
``CheckpointHook`` rewrote it after validating) and, when the resumed step is one the loop
validates after and the checkpoint precedes that validation, runs it before training
goes on, as the uninterrupted run did: the same random draws, metrics, logged scalars and
best checkpoint.
"""
from __future__ import annotations

from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from kdbench.registry import HOOKS


def validation_due(loop) -> bool:
    """Whether ``loop`` (an epoch- or iteration-based train loop at the end of a step: its
    ``epoch`` or ``iter`` counts completed ones) validates after the step it is at, by its
    own rule (``val_begin``, ``val_interval``, always after the last step)."""
    if loop.runner.val_loop is None:
        return False
    if isinstance(loop, EpochBasedTrainLoop):
        step, last = loop.epoch, loop.max_epochs
    elif isinstance(loop, IterBasedTrainLoop):
        step, last = loop.iter, loop.max_iters
    else:
        return False
    return step >= max(loop.val_begin, 1) and (step % loop.val_interval == 0 or step == last)


@HOOKS.register_module()
class ResumeValidationHook(Hook):
    """Run the validation a resumed checkpoint was written before (see the module
    docstring). Last in ``before_train``, after the ``CheckpointHook`` has read the best
    score and checkpoint it keeps from the resumed message hub. A checkpoint loaded as
    ``load_from`` leaves the loop at step 0, where nothing is due."""

    priority = 'LOWEST'

    def __init__(self):
        self._stage: Optional[str] = None    # loop_stage of the checkpoint resumed from

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.get('message_hub') or {}
        self._stage = (hub.get('runtime_info') or {}).get('loop_stage')

    def before_train(self, runner) -> None:
        stage, self._stage = self._stage, None
        if stage != 'train' or not _at_step_end(runner):
            return
        if validation_due(runner.train_loop):
            runner.logger.info('The resumed checkpoint was written before its validation '
                               'ran: validating first, as the uninterrupted run did.')
            runner.val_loop.run()


def _at_step_end(runner) -> bool:
    """Whether the resumed position is the end of an epoch (epoch-based loops; an
    iteration checkpoint inside an epoch comes after the previous epoch's validation)."""
    loop = runner.train_loop
    if not isinstance(loop, EpochBasedTrainLoop):
        return True
    return loop.iter == loop.epoch * len(loop.dataloader)
