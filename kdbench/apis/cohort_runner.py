"""The Runner and training loop of one cohort member (docs/cohorts.md).

A member is trained exactly as ``KDRunner.train()`` trains it alone, except that the
cohort drives the loop: :meth:`CohortRunner.prepare_training` does everything
``Runner.train()`` does before ``train_loop.run()`` (optionally with another member's
train dataloader), and :class:`MemberEpochLoop` splits an epoch into the steps the
cohort calls for each member around the batches they share.
"""
from __future__ import annotations

from typing import Optional

from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader


from kdbench.hooks.random_state import random_states, same_random_states
from .runner import KDRunner


class CohortError(ValueError):
    """A cohort that cannot give every member the results of its run alone."""


class MemberEpochLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` whose epoch is split into :meth:`begin_epoch`, the
    inherited ``run_iter`` per batch and :meth:`end_epoch` (hooks, epoch count and
    validation as ``run()``/``run_epoch()`` do them). ``run()`` is unchanged."""

    @property
    def finished(self) -> bool:
        """All epochs trained, or a hook (early stopping) stopped training."""
        return self._epoch >= self._max_epochs or self.stop_training

    def begin_epoch(self) -> None:
        """``before_train_epoch`` hooks, then the model in training mode."""
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()

    def end_epoch(self) -> None:
        """``after_train_epoch`` hooks, the epoch counted, then validation when due."""
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
        self._decide_current_val_interval()
        if (self.runner.val_loop is not None and self._epoch >= self.val_begin and
                (self._epoch % self.val_interval == 0 or self._epoch == self._max_epochs)):
            self.runner.val_loop.run()


class CohortRunner(KDRunner):
    """``KDRunner`` of a cohort member: its train loop is a :class:`MemberEpochLoop`
    and :meth:`prepare_training` replaces ``train()`` (the cohort runs the loop)."""

    #: Whether building the train dataloader drew from this process's global random
    #: generators (set by :meth:`prepare_training` when it builds one).
    loader_drew_random: bool = False

    def prepare_training(self, train_dataloader: Optional[DataLoader] = None) -> None:
        """What ``Runner.train()`` does before ``train_loop.run()``: build the train loop,
        optimizer wrapper and schedulers, scale the lr, build the validation loop, call the
        ``before_run`` hooks, initialise the weights, load or resume, start the optimizer
        wrapper's counts and compile when configured.

        Args:
            train_dataloader: a built dataloader to train from (the first member's)
                instead of building this config's ``train_dataloader``.
        """
        for key in ('activation_checkpointing', 'efficient_conv_bn_eval'):
            if self.cfg.get(key) is not None:
                raise CohortError(f'{self.cfg.filename}: {key} is not supported in cohorts '
                                  'yet; train this config alone (tools/train.py).')
        if train_dataloader is not None:
            self._train_dataloader = train_dataloader
            self._train_loop = self.build_train_loop(self._train_loop)
        else:
            before = random_states()
            self._train_loop = self.build_train_loop(self._train_loop)
            self.loader_drew_random = not same_random_states(before, random_states())
        self.optim_wrapper = self.build_optim_wrapper(self.optim_wrapper)
        self.scale_lr(self.optim_wrapper, self.auto_scale_lr)
        if self.param_schedulers is not None:
            self.param_schedulers = self.build_param_scheduler(self.param_schedulers)
        if self._val_loop is not None:
            self._val_loop = self.build_val_loop(self._val_loop)
        self.call_hook('before_run')
        self._init_model_weights()
        self.load_or_resume()
        self.optim_wrapper.initialize_count_status(self.model, self._train_loop.iter,
                                                   self._train_loop.max_iters)
        self._maybe_compile('train_step')

    def build_train_loop(self, loop):
        """A :class:`MemberEpochLoop` from an epoch-based ``train_cfg`` (as
        ``KDRunner.build_train_loop`` builds the loop); other loops are refused."""
        if isinstance(loop, dict):
            loop = dict(loop)
            kind = loop.pop('type', 'EpochBasedTrainLoop')
            if kind not in ('EpochBasedTrainLoop', EpochBasedTrainLoop) or \
                    not loop.pop('by_epoch', True):
                raise CohortError(f'{self.cfg.filename}: cohorts train epoch-based loops only '
                                  '(train_cfg.by_epoch=True), got train_cfg='
                                  f'{dict(self.cfg.train_cfg)}.')
            loop['type'] = MemberEpochLoop
        return super().build_train_loop(loop)
