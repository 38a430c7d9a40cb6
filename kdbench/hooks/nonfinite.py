"""Guards against non-finite losses: stop the run (default) or skip the optimizer step.

``NonFiniteLossGuard`` (a runner hook, on by default in ``configs/_base_/default_runtime.py``)
checks every ``loss*`` term after each training iteration. When one is NaN or inf it raises
:class:`NonFiniteLossError` naming the term(s) (a method's key, e.g. ``loss_kd``), the
iteration, the config and the last checkpoint on disk. It runs before mmengine's
``CheckpointHook`` (priority ``ABOVE_NORMAL`` against ``VERY_LOW``), so the weights of the
bad step are never saved: the last checkpoint holds the last good weights.

Skipping the step instead needs a decision before the parameters move, which a hook cannot
make (``train_step`` runs backward and step in one call), so it is the optimizer wrapper's
job: ``optim_wrapper = dict(type='NonFiniteSkipOptimWrapper', max_consecutive_skips=10,
optimizer=...)``. The guard then logs a warning per skipped step instead of stopping, and
the wrapper stops the run after ``max_consecutive_skips`` skipped steps in a row.
"""
from __future__ import annotations

import logging
import math
from typing import Dict, List, Optional

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.runner import EpochBasedTrainLoop, find_latest_checkpoint

from kdbench.registry import HOOKS, OPTIM_WRAPPERS

SKIP_SWITCH = "optim_wrapper.type='NonFiniteSkipOptimWrapper'"
_SKIP_ADVICE = ('The weights never took a non-finite step, so the last checkpoint is good. '
                'Lower the learning rate or the loss weights, or check the data '
                '(tools/check_dataset.py CONFIG).')


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN or inf."""


def _all_ranks_agree(finite: bool) -> bool:
    """True when ``finite`` holds on every process (one scalar all-reduce when distributed,
    so that every rank takes the same decision and none waits for the others)."""
    if dist.get_world_size() < 2:
        return finite
    flag = torch.tensor(1 if finite else 0, dtype=torch.int32)
    dist.all_reduce(flag, op='min')
    return bool(flag.item())


def nonfinite_terms(log_vars: Dict) -> Dict[str, float]:
    """``{key: value}`` of the ``loss*`` entries of ``log_vars`` that are NaN or inf
    (multi-element tensors are reported by their sum)."""
    bad = {}
    for key, value in (log_vars or {}).items():
        if 'loss' not in key:
            continue
        if isinstance(value, torch.Tensor):
            value = value.detach().float().sum().item()
        value = float(value)
        if not math.isfinite(value):
            bad[key] = value
    return bad


def _skippers(runner) -> List[OptimWrapper]:
    wrapper = getattr(runner, 'optim_wrapper', None)
    wrappers = list(wrapper.values()) if isinstance(wrapper, OptimWrapperDict) else [wrapper]
    return [w for w in wrappers if isinstance(w, NonFiniteSkipOptimWrapper)]


def _position(runner, batch_idx: int) -> str:
    where = f'iteration {runner.iter + 1}'
    if isinstance(runner.train_loop, EpochBasedTrainLoop):
        where += (f' (epoch {runner.epoch + 1}/{runner.max_epochs}, batch {batch_idx + 1}/'
                  f'{len(runner.train_dataloader)})')
    else:
        where += f'/{runner.max_iters}'
    return where


def _config_name(runner) -> str:
    cfg = getattr(runner, 'cfg', None)
    filename = getattr(cfg, 'filename', None) if cfg is not None else None
    return filename or f'<{runner.experiment_name}, built without a config file>'


@HOOKS.register_module()
class NonFiniteLossGuard(Hook):
    """Stop training at the first NaN/inf ``loss*`` term, before any checkpoint of the
    corrupted weights is written.

    After each training iteration it checks every entry of the parsed log vars whose key
    contains ``'loss'`` (the terms mmengine sums into the backpropagated loss, and their
    sum ``loss``). A non-finite one raises :class:`NonFiniteLossError` naming the terms,
    the iteration (and epoch), the config and the last checkpoint written (which holds the
    last good weights: this hook runs before ``CheckpointHook``). With
    ``optim_wrapper.type='NonFiniteSkipOptimWrapper'`` the step was skipped instead, so the
    guard logs a warning and training goes on. When distributed, the ranks agree through
    one scalar all-reduce per iteration, so all of them stop (or skip) together.
    """

    priority = 'ABOVE_NORMAL'     # before LoggerHook (BELOW_NORMAL), CheckpointHook (VERY_LOW)

    def before_train(self, runner) -> None:
        for wrapper in _skippers(runner):
            wrapper.guarded = True      # this hook reports the skips and stops at the limit

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[Dict] = None) -> None:
        bad = nonfinite_terms(outputs if isinstance(outputs, dict) else {})
        nonfinite = not _all_ranks_agree(not bad)
        skippers = _skippers(runner)
        stuck = [w for w in skippers if w.consecutive_skips >= w.max_consecutive_skips]
        if not nonfinite and not stuck:
            return
        named = {k: v for k, v in bad.items() if k != 'loss'} or bad
        terms = (', '.join(f'{k} = {v}' for k, v in named.items()) if named else
                 'finite here, non-finite on another process' if nonfinite else
                 'non-finite in an earlier micro-batch of this accumulation window')
        where = _position(runner, batch_idx)
        if stuck:
            raise NonFiniteLossError(
                f'Non-finite loss at {where} of config {_config_name(runner)}: {terms}; '
                f'{stuck[0].consecutive_skips} optimizer steps in a row were skipped '
                f'(max_consecutive_skips={stuck[0].max_consecutive_skips}), so training '
                f'stopped. {_SKIP_ADVICE}')
        if skippers:
            skips = max(w.total_skips + w.skip_pending for w in skippers)
            print_log(f'NonFiniteLossGuard: non-finite loss at {where}: {terms}; the optimizer '
                      f'step is skipped (parameters unchanged; {skips} skipped so far).',
                      logger='current', level=logging.WARNING)
            return
        latest = find_latest_checkpoint(runner.work_dir)
        kept = (f"The last checkpoint written, '{latest}', holds the last good weights (no "
                'checkpoint of this step was written): after fixing data or code, continue it with '
                'tools/train.py CONFIG --resume; to change the learning rate or schedule, '
                "start a new run from its weights ('load_from') in a new "
                '--work-dir (--resume keeps the optimizer and schedule it saved).' if latest else
                'No checkpoint had been written yet.')
        raise NonFiniteLossError(
            f'Non-finite loss at {where} of config {_config_name(runner)}: {terms}. '
            f'Training stopped. {kept} Usual causes: a learning rate or loss weight too '
            'high, log/div of zero in a loss, or bad input data (tools/check_dataset.py '
            f'CONFIG). To skip such steps instead of stopping, set {SKIP_SWITCH}.')


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipOptimWrapper(OptimWrapper):
    """mmengine's ``OptimWrapper`` that skips the optimizer step when the loss is NaN/inf.

    ``update_params(loss)`` still runs backward (so that distributed gradient
    synchronisation stays in step on every rank), but when the loss is non-finite on any
    process the gradients are zeroed and ``optimizer.step()`` is not called: parameters
    and optimizer state (momentum, Adam moments) stay exactly as they were. With gradient
    accumulation one non-finite micro-batch drops its whole accumulation window. The
    learning-rate schedule still advances. Skips are counted in the message hub
    (infos ``nonfinite_skips`` and ``nonfinite_consecutive_skips``);
    ``max_consecutive_skips`` skipped steps in a row raise :class:`NonFiniteLossError`
    (from ``NonFiniteLossGuard`` when it is registered, naming the terms; else from here).

    Args:
        optimizer: the wrapped optimizer.
        max_consecutive_skips: stop after this many skipped steps in a row.
        **kwargs: ``OptimWrapper`` arguments (``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, max_consecutive_skips: int = 10,
                 **kwargs):
        super().__init__(optimizer, **kwargs)
        if max_consecutive_skips < 1:
            raise ValueError('NonFiniteSkipOptimWrapper: max_consecutive_skips must be >= 1, '
                             f'got {max_consecutive_skips}.')
        self.max_consecutive_skips = int(max_consecutive_skips)
        self.total_skips = 0
        self.consecutive_skips = 0
        self.skip_pending = 0       # 1 while a non-finite micro-batch poisons the window
        self.guarded = False        # set by NonFiniteLossGuard, which then raises at the limit

    def update_params(self, loss: torch.Tensor, step_kwargs: Optional[Dict] = None,
                      zero_kwargs: Optional[Dict] = None) -> None:
        finite = _all_ranks_agree(bool(torch.isfinite(loss.detach()).all()))
        self.backward(self.scale_loss(loss))
        if not finite:
            self.skip_pending = 1
        if not self.should_update():
            return
        if self.skip_pending:
            self.skip_pending = 0
            self.zero_grad(**(zero_kwargs or {}))
            self.total_skips += 1
            self.consecutive_skips += 1
            self.message_hub.update_info('nonfinite_skips', self.total_skips)
            self.message_hub.update_info('nonfinite_consecutive_skips', self.consecutive_skips)
            if not self.guarded and self.consecutive_skips >= self.max_consecutive_skips:
                iteration = self.message_hub.get_info('iter')
                raise NonFiniteLossError(
                    f'NonFiniteSkipOptimWrapper: {self.consecutive_skips} optimizer steps in a '
                    'row skipped for a non-finite loss (max_consecutive_skips='
                    f'{self.max_consecutive_skips}), the last at iteration '
                    f'{"?" if iteration is None else iteration + 1}; training stopped. '
                    f'{_SKIP_ADVICE}')
            return
        self.step(**(step_kwargs or {}))
        self.zero_grad(**(zero_kwargs or {}))
        self.consecutive_skips = 0
        self.message_hub.update_info('nonfinite_consecutive_skips', 0)
