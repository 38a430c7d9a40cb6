"""The teacher's validation score beside the student's, evaluated once and cached."""
from __future__ import annotations

import hashlib
import json
import numbers
import os
import time
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from kdbench.data_contract import sample_files
from kdbench.registry import HOOKS
from kdbench.utils.atomic_io import write_atomically
from kdbench.utils.file_hash import file_sha256

from .random_state import random_states, set_random_states

CACHE_NAME = 'teacher_metrics.json'
CACHE_ENV = 'KDBENCH_CACHE_DIR'


def cache_key(teacher_ckpt: str, settings: dict) -> str:
    """``<sha256 of the checkpoint>-<sha256 of the settings>`` (first 16 hex digits each).

    ``settings`` holds whatever else decides the score: the teacher config, the data
    preprocessor, the validation dataset and the evaluator configs.
    """
    text = json.dumps(settings, sort_keys=True, default=str)
    return (f'{file_sha256(teacher_ckpt)[:16]}-'
            f'{hashlib.sha256(text.encode()).hexdigest()[:16]}')


#: Attributes of a dataset object that list or hold its samples (ids of a split file,
#: ``(path, label)`` pairs, in-memory images and labels, indices of a subset).
CONTENT_ATTRIBUTES = ('ids', 'samples', 'indices', 'labels', 'images')


def dataset_identity(dataset) -> str:
    """SHA-256 (first 16 hex digits) of what a dataset object holds and reads.

    Covers the class, length and metainfo, the content attributes
    (:data:`CONTENT_ATTRIBUTES`: split ids, sample lists, in-memory arrays) and the size
    and modification time of every per-sample file (the dataset contract's
    ``sample_files``, :mod:`kdbench.data_contract`); wrapped datasets (``.dataset``) are
    included. Editing a split file, replacing images or labels, or another subset gives
    another identity.
    """
    digest = hashlib.sha256()
    while dataset is not None:
        digest.update(f'{type(dataset).__name__}:{len(dataset)}:'
                      f'{getattr(dataset, "metainfo", None)}'.encode())
        for name in CONTENT_ATTRIBUTES:
            value = getattr(dataset, name, None)
            if isinstance(value, torch.Tensor):
                value = value.numpy()
            if isinstance(value, np.ndarray):
                digest.update(np.ascontiguousarray(value).tobytes())
            elif value is not None:
                digest.update(repr(value).encode())
        for path in sample_files(dataset):
            stat = os.stat(path) if os.path.exists(path) else None
            digest.update(f'{path}:{stat and (stat.st_size, stat.st_mtime_ns)}'.encode())
        dataset = getattr(dataset, 'dataset', None)
    return digest.hexdigest()[:16]


def read_cache(path: str) -> dict:
    """The cache's entries (``{}`` when the file is missing or unreadable)."""
    try:
        with open(path) as f:
            entries = json.load(f)
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


@HOOKS.register_module()
class TeacherMetricHook(Hook):
    """Log the frozen teacher's validation metrics next to the student's at every
    validation, at the cost of one teacher evaluation per teacher checkpoint and
    validation setup, across runs.

    The teacher never changes, so its score on a validation set is fixed. At the first
    validation the hook looks the score up in a JSON cache keyed by the SHA-256 of the
    teacher checkpoint file and of the settings that decide the score (teacher config,
    data preprocessor, validation dataset config and :func:`dataset_identity` of the
    built validation set: its split's ids, files' sizes and times, evaluator); on a miss
    it evaluates the teacher once with the run's validation dataloader and evaluator and
    stores the result. After every validation the metrics go to the message hub as
    ``val/teacher/<metric>``, so the log line and ``scalars.json`` show them beside the
    student's. The random generator states are restored after an evaluation, so a cache
    hit and a miss give the same training run. Models without a teacher (plain task
    models) are left alone.

    Args:
        cache_file: the JSON cache; default ``$KDBENCH_CACHE_DIR/teacher_metrics.json``,
            else ``teacher_metrics.json`` in the parent of the work dir (shared by the
            runs of ``work_dirs/*``).
    """

    priority = 'NORMAL'      # after RuntimeInfoHook, before the LoggerHook writes the line

    def __init__(self, cache_file: Optional[str] = None):
        self.cache_file = cache_file
        self.metrics: Optional[Dict[str, float]] = None
        self.source = ''

    def cache_path(self, runner) -> str:
        if self.cache_file:
            return self.cache_file
        root = os.environ.get(CACHE_ENV) or os.path.dirname(os.path.abspath(runner.work_dir))
        return os.path.join(root, CACHE_NAME)

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if getattr(model, 'teacher', None) is None or not getattr(model, 'teacher_ckpt', None):
            return
        if self.metrics is None:
            self.metrics = self.teacher_metrics(runner, model)
        for name, value in self.metrics.items():
            runner.message_hub.update_scalar(f'val/teacher/{name}', value)

    def teacher_metrics(self, runner, model) -> Dict[str, float]:
        """Cached metrics, or one evaluation of the teacher (every rank takes part)."""
        path = self.cache_path(runner)
        key = cache_key(model.teacher_ckpt, score_settings(runner, model))
        found = [read_cache(path).get(key) if is_main_process() else None]
        broadcast_object_list(found)
        if found[0] is not None:
            self.source = f'cached in {path}'
            metrics = found[0]['metrics']
        else:
            start = time.perf_counter()
            metrics = evaluate_teacher(runner, model)
            self.source = f'evaluated in {time.perf_counter() - start:.1f} s, cached in {path}'
            if is_main_process():
                entries = read_cache(path)
                entries[key] = dict(metrics=metrics, teacher_ckpt=model.teacher_ckpt,
                                    date=time.strftime('%Y-%m-%d %H:%M'))
                write_atomically(json.dumps(entries, indent=1, sort_keys=True), path)
        shown = ', '.join(f'{k}: {v:.4f}' for k, v in metrics.items())
        runner.logger.info(f'Teacher on the validation set ({self.source}): {shown}')
        return metrics


def score_settings(runner, model) -> dict:
    """Everything besides the checkpoint that decides the teacher's validation score."""
    model_cfg = runner.cfg.model
    preprocessor = (model_cfg.get('data_preprocessor') or
                    model_cfg.get('student', {}).get('data_preprocessor'))
    speed = getattr(model, 'speed', None)
    return dict(teacher=model_cfg.get('teacher'), data_preprocessor=preprocessor,
                teacher_dtype=str(getattr(speed, 'teacher_dtype', None)),
                dataset=runner.cfg.val_dataloader.get('dataset'),
                data=dataset_identity(runner.val_loop.dataloader.dataset),
                evaluator=runner.cfg.get('val_evaluator'))


def evaluate_teacher(runner, model) -> Dict[str, float]:
    """Run the Distiller's teacher over the run's validation dataloader and evaluator;
    the random generator states are restored afterwards."""
    states = random_states()
    evaluator, loader = runner.val_loop.evaluator, runner.val_loop.dataloader
    try:
        for batch in loader:
            evaluator.process(data_samples=model.teacher_predict(batch), data_batch=batch)
        metrics = evaluator.evaluate(len(loader.dataset))
    finally:
        set_random_states(states)
    return {name: float(value) for name, value in metrics.items()
            if isinstance(value, numbers.Number) or getattr(value, 'ndim', None) == 0}
