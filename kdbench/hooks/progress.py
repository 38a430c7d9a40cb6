"""A one-line-per-epoch progress report, for quiet runs (suites, the demo)."""
from __future__ import annotations

import time
from typing import Dict, Optional

from mmengine.hooks import Hook

from kdbench.registry import HOOKS


@HOOKS.register_module()
class ProgressHook(Hook):
    """Prints ``[name] epoch e/E  loss ...  <val metrics>  (elapsed)`` after each epoch.

    It prints even when the runner's log level hides mmengine's INFO lines. Losses are
    the means over the epoch's iterations.
    """

    priority = 'VERY_LOW'

    def __init__(self, name: str = ''):
        self.name = name
        self._start = time.perf_counter()
        self._losses = ''

    def before_run(self, runner) -> None:
        self._start = time.perf_counter()

    def after_train_epoch(self, runner) -> None:
        window = len(runner.train_dataloader)
        self._losses = '  '.join(f'{k[len("train/"):]} {buf.mean(window):.4f}'
                                 for k, buf in runner.message_hub.log_scalars.items()
                                 if k.startswith('train/') and 'loss' in k)
        finished = runner.epoch + 1    # mmengine counts the epoch after this hook
        loop = runner.train_loop
        if finished % loop.val_interval or finished < loop.val_begin:
            self._report(finished, runner.max_epochs, None)

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        self._report(runner.epoch, runner.max_epochs, metrics)

    def _report(self, epoch: int, max_epochs: int, metrics: Optional[Dict[str, float]]) -> None:
        shown = '  '.join(f'{k} {v:.2f}' for k, v in (metrics or {}).items())
        elapsed = time.perf_counter() - self._start
        print(f'[{self.name}] epoch {epoch}/{max_epochs}  {self._losses}  {shown}  '
              f'({elapsed:.0f} s)', flush=True)
