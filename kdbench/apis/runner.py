"""mmengine's Runner with kdbench's checkpoint handling, in one place.

``--resume``, ``load_from`` and every other checkpoint the Runner loads go through
:func:`~kdbench.utils.checkpoint.load_local_checkpoint` (weights-only with mmengine's
classes allow-listed, a clear error for unreadable files; a file holding other objects is
refused unless the config sets ``trust_checkpoint = True``, which ``--trust-checkpoint``
does); URLs and ``torchvision://`` names are downloaded and checked as
:mod:`kdbench.utils.weights` says. The weights its model's constructors and
``init_weights`` load (``teacher_ckpt``, ``encoder_ckpt``, ``weights``, ``Pretrained``)
get the same consent through :func:`~kdbench.utils.checkpoint.trusted_checkpoints`. Its
checkpoint saves are atomic. Other code in the process keeps torch's and mmengine's
defaults.

Its dataloaders are built with their workers' seeding as constructor arguments: the train
dataloader, when it has workers, draws per-epoch worker streams
(:func:`~kdbench.hooks.worker_seed.epoch_seeded_loader`), and the validation dataloader
starts its workers from a generator of its own, so validating draws nothing from the
training process's torch stream (a loader without workers still draws its base seed from
it: :mod:`kdbench.hooks.resume_validation`).

While it is being built, its INFO messages (mmengine's environment dump, the full config,
the hook order) go to the log file only; warnings and errors also reach the console, and
the config key ``verbose_log=True`` (``tools/train.py --verbose``) prints everything.

It is built from its config set up for the config's validation protocol (the key
``validation``: :func:`~kdbench.apis.validation.training_config`), so every run, alone or
in a cohort, splits its training set when asked and writes ``final_metrics.json``.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional, Union

from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint_to_model
from torch import nn

from kdbench.hooks.worker_seed import epoch_seeded_loader, worker_generator
from kdbench.registry import RUNNERS
from kdbench.utils.atomic_io import atomic_backend_args
from kdbench.utils.checkpoint import load_local_checkpoint, trusted_checkpoints
from kdbench.utils.weights import load_named_weights

from .validation import training_config


class WarningsOnly(logging.Filter):
    """A handler filter passing records of WARNING level and above."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def _console_handlers(logger: logging.Logger) -> list:
    return [h for h in logger.handlers if isinstance(h, logging.StreamHandler)
            and not isinstance(h, logging.FileHandler)]


@RUNNERS.register_module()
class KDRunner(Runner):
    """``Runner`` whose checkpoint loads (resume, ``load_from``, the model's weights) use
    kdbench's loaders with the config's ``trust_checkpoint`` consent, whose saves are atomic,
    whose train and validation dataloaders seed their workers and whose set-up log goes to
    the log file only, as the module docstring says (registered in kdbench's RUNNERS)."""

    def __init__(self, *args, **kwargs):
        self._setup_filter: Optional[WarningsOnly] = WarningsOnly()
        try:
            super().__init__(*args, **kwargs)
        finally:
            if hasattr(self, 'logger'):
                for handler in _console_handlers(self.logger):
                    handler.removeFilter(self._setup_filter)
            self._setup_filter = None

    @classmethod
    def from_cfg(cls, cfg) -> 'KDRunner':
        """As ``Runner.from_cfg``, from :func:`~kdbench.apis.validation.training_config`
        of ``cfg`` (a copy: ``cfg`` itself is unchanged)."""
        return super().from_cfg(training_config(cfg))

    def build_logger(self, log_level: Union[int, str] = 'INFO', log_file: Optional[str] = None,
                     **kwargs) -> MMLogger:
        """As ``Runner.build_logger``; unless the config sets ``verbose_log=True``, the
        console shows warnings and errors only until the Runner is built. A runner built in
        the same second as another one in this process (whose experiment name, a timestamp,
        mmengine would reuse for the logger, message hub and visualizer, sharing them) gets
        a numbered name of its own."""
        base, number = self._experiment_name, 1
        while MMLogger.check_instance_created(self._experiment_name):
            number += 1
            self._experiment_name = f'{base}_{number}'
        logger = super().build_logger(log_level, log_file, **kwargs)
        if self._setup_filter is not None and not self.cfg.get('verbose_log'):
            for handler in _console_handlers(logger):
                handler.addFilter(self._setup_filter)
        return logger

    @property
    def trust_checkpoint(self) -> bool:
        """The config's ``trust_checkpoint`` (``--trust-checkpoint``): load checkpoint files
        that need more than a weights-only load."""
        return bool(self.cfg.get('trust_checkpoint', False))

    def build_model(self, model) -> nn.Module:
        """As ``Runner.build_model``, the weights its constructors load given the consent."""
        with trusted_checkpoints(self.trust_checkpoint):
            return super().build_model(model)

    def _init_model_weights(self) -> None:
        """As mmengine's, ``Pretrained`` init_cfgs given the consent."""
        with trusted_checkpoints(self.trust_checkpoint):
            super()._init_model_weights()

    def build_train_loop(self, loop):
        """As ``Runner.build_train_loop``, the train dataloader config (when it has workers)
        made to draw per-epoch worker streams (``kdbench.hooks.worker_seed``)."""
        if isinstance(self._train_dataloader, dict):
            self._train_dataloader = epoch_seeded_loader(self._train_dataloader, self.seed,
                                                         self.rank)
        return super().build_train_loop(loop)

    def build_val_loop(self, loop):
        """As ``Runner.build_val_loop``, the validation dataloader config (when it has
        workers) given a generator of its own seeded from the run's seed."""
        if isinstance(self._val_dataloader, dict):
            self._val_dataloader = worker_generator(self._val_dataloader, self.seed)
        return super().build_val_loop(loop)

    def load_checkpoint(self, filename: str, map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False, revise_keys: list = [(r'^module.', '')]):
        """As ``Runner.load_checkpoint``, reading files with kdbench's loaders."""
        if '://' in filename:
            checkpoint = load_named_weights(filename, 'resumed', 'load_from',
                                            self.trust_checkpoint, map_location)
        else:
            checkpoint = load_local_checkpoint(filename, map_location, self.trust_checkpoint)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict,
                                               revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def save_checkpoint(self, out_dir: str, filename: str,
                        file_client_args: Optional[dict] = None, *args,
                        backend_args: Optional[dict] = None, **kwargs):
        """As ``Runner.save_checkpoint``; local files are written atomically."""
        if backend_args is None and file_client_args is None and '://' not in out_dir:
            backend_args = atomic_backend_args()
        return super().save_checkpoint(out_dir, filename, file_client_args, *args,
                                       backend_args=backend_args, **kwargs)
