"""``final_metrics.json``: what a training run reports, under its validation protocol.

At the end of training :class:`FinalMetricsHook` picks the reported weights: the best
checkpoint's when the run's ``CheckpointHook`` saves one (``save_best``, every kdbench
config: ``'auto'``, the first validation metric), else the last epoch's. With protocol
``'holdout'`` it evaluates the test split once with those weights (the test loop; the
values are logged and added to the scalars as ``test/<metric>``); with ``'test'`` (the
papers' protocol: validation ran on the test split) the test metrics are those
weights' validation metrics. It writes, in the work dir::

    {"protocol": "holdout" | "test",
     "val": {metric: float, ...},   # the reported weights' validation metrics
     "test": {metric: float, ...},  # protocol 'test': the same as val
     "val_metric": str,             # the metric the weights were chosen by
     "epoch": int, "iter": int}     # when the reported weights were validated

The validation history it chooses from is kept in the message hub (``runtime_info``), so
it is saved in checkpoints and a resumed run chooses from every epoch.
"""
from __future__ import annotations

import json
import os
from numbers import Number
from typing import Dict, List, Optional, Tuple

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.model import is_model_wrapper

from kdbench.registry import HOOKS
from kdbench.utils.atomic_io import write_atomically
from kdbench.utils.checkpoint import load_local_checkpoint

FILE_NAME = 'final_metrics.json'
HISTORY_KEY = 'kdbench_val_history'


def _scalars(metrics: Optional[dict]) -> Dict[str, float]:
    return {str(k): float(v) for k, v in (metrics or {}).items()
            if isinstance(v, Number) or getattr(v, 'ndim', None) == 0}


@HOOKS.register_module()
class FinalMetricsHook(Hook):
    """Writes ``final_metrics.json`` at the end of training (module docstring).

    Args:
        protocol: ``'test'`` or ``'holdout'`` (the config's ``validation.split``; set by
            :func:`kdbench.apis.validation.training_config`, which adds this hook).
    """

    priority = 'LOW'    # after_val_epoch: before the CheckpointHook (VERY_LOW) saves

    def __init__(self, protocol: str = 'test'):
        if protocol not in ('test', 'holdout'):
            raise ValueError(f"FinalMetricsHook protocol must be 'test' or 'holdout', got "
                             f'{protocol!r}.')
        self.protocol = protocol

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if isinstance(runner._train_loop, dict) or runner._train_loop is None:
            return          # a validation outside training
        history = list(runner.message_hub.get_info(HISTORY_KEY, []))
        history.append(dict(epoch=runner.epoch, iter=runner.iter, metrics=_scalars(metrics)))
        runner.message_hub.update_info(HISTORY_KEY, history)

    def after_train(self, runner) -> None:
        history = list(runner.message_hub.get_info(HISTORY_KEY, []))
        chosen, val_metric, best_file = self._choose(runner, history)
        if self.protocol == 'holdout':
            test = self._evaluate_test(runner, best_file)
            shown = ', '.join(f'test/{k}: {v:.4f}' for k, v in test.items())
            runner.logger.info(f'Test split, evaluated once with the weights of epoch '
                               f"{chosen['epoch']} ({'best' if best_file else 'last'} on "
                               f'validation {val_metric}): {shown}')
            runner.visualizer.add_scalars({f'test/{k}': v for k, v in test.items()},
                                          step=runner.epoch)
        else:
            test = chosen['metrics']
        if is_main_process():
            record = dict(protocol=self.protocol, val=chosen['metrics'], test=test,
                          val_metric=val_metric, epoch=chosen['epoch'], iter=chosen['iter'])
            path = os.path.join(runner.work_dir, FILE_NAME)
            write_atomically(json.dumps(record, indent=1) + '\n', path)
            runner.logger.info(f'Final metrics (protocol {self.protocol}) written to {path}.')

    @staticmethod
    def _choose(runner, history: List[dict]) -> Tuple[dict, Optional[str], Optional[str]]:
        """``(entry, metric, best checkpoint file)``: the best-checkpoint epoch's history
        entry by the CheckpointHook's metric and rule when it saves one, else the last
        (``None`` file)."""
        last = history[-1] if history else dict(epoch=runner.epoch, iter=runner.iter,
                                                 metrics={})
        main = next(iter(last['metrics']), None)
        saver = next((h for h in runner.hooks if isinstance(h, CheckpointHook)
                      and h.save_best), None)
        keys = [k for k in getattr(saver, 'key_indicators', []) if k != 'auto']
        if saver is None or not keys:
            return last, main, None
        key = keys[0]
        better = saver.is_better_than[key]
        best = None
        for entry in history:
            value = entry['metrics'].get(key)
            if value is not None and (best is None or better(value, best['metrics'][key])):
                best = entry
        info = 'best_ckpt' if len(saver.key_indicators) == 1 else f'best_ckpt_{key}'
        path = runner.message_hub.get_info(info)
        if best is None or not path:
            return last, main, None
        return best, key, path

    @staticmethod
    def _evaluate_test(runner, best_file: Optional[str]) -> Dict[str, float]:
        """The test loop's metrics with the weights of ``best_file`` (``None``: the current,
        last epoch's); the current weights are put back afterwards."""
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        current = None
        if best_file is not None:
            if not os.path.isfile(best_file):
                raise FileNotFoundError(f'The best checkpoint {best_file} the test split is to '
                                        'be evaluated with is gone; evaluate it with '
                                        'tools/test.py and a checkpoint of this run.')
            current = {k: v.detach().clone() for k, v in model.state_dict().items()}
            checkpoint = load_local_checkpoint(best_file, 'cpu',
                                               getattr(runner, 'trust_checkpoint', False))
            model.load_state_dict(checkpoint['state_dict'])
        try:
            return _scalars(runner.test_loop.run())
        finally:
            if current is not None:
                model.load_state_dict(current)
