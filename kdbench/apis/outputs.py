"""Config edits for tools/test.py's outputs: per-sample records and pictures
(``--out``/``--show-dir``) and segmentation test-time augmentation (``--tta``)."""
from __future__ import annotations

import inspect
from typing import Optional, Sequence

from mmengine.config import Config

from kdbench.data_contract import sample_writer
from kdbench.evaluation.samples import check_out_file
from kdbench.registry import METRICS, MODELS

from .config import task_model_cfg


def _evaluators(cfg: Config) -> list:
    evaluator = cfg.test_evaluator
    return list(evaluator) if isinstance(evaluator, (list, tuple)) else [evaluator]


def add_sample_outputs(cfg: Config, out_file: Optional[str] = None,
                       show_dir: Optional[str] = None) -> None:
    """Append the task's sample writer (the ``sample_writer`` its test metric names) to
    ``cfg.test_evaluator``, writing records to ``out_file`` and pictures to ``show_dir``."""
    if not out_file and not show_dir:
        return
    if out_file:
        check_out_file(out_file)
    metrics = _evaluators(cfg)
    writers = [sample_writer(METRICS.get(m['type'])) for m in metrics]
    writers = [w for w in writers if w]
    if not writers:
        raise ValueError(f"--out/--show-dir: the test evaluator ({[m['type'] for m in metrics]})"
                         " names no sample_writer; per-sample outputs exist for the "
                         'classification and segmentation metrics.')
    writer = dict(type=writers[0], out_file=out_file, show_dir=show_dir)
    for key in ('ignore_index',):
        if key in metrics[0] and key in inspect.signature(METRICS.get(writers[0])).parameters:
            writer[key] = metrics[0][key]
    cfg.test_evaluator = metrics + [writer]


def enable_tta(cfg: Config, scales: Optional[Sequence[float]] = None,
               flip: bool = True) -> None:
    """Turn on the task model's test-time augmentation (``tta`` argument; the student's
    in a distillation config) with ``scales`` (empty or ``None``: the model's default) and
    ``flip``; models without one are refused by name."""
    model = cfg.model.student if 'student' in cfg.model else cfg.model
    model_cls = MODELS.get(task_model_cfg(cfg.model)['type'])
    if model_cls is None or 'tta' not in inspect.signature(model_cls).parameters:
        raise ValueError(f"--tta: model type '{model['type']}' has no test-time augmentation "
                         '(it exists for segmentation models).')
    model.tta = dict(flip=flip, **(dict(scales=tuple(scales)) if scales else {}))


def tta_text(tta: Optional[dict]) -> str:
    """What a task model's ``tta`` setting (``scales``, ``flip``) does, in words; ``'off'``
    for ``None``."""
    if not tta:
        return 'off'
    rest = {k: v for k, v in tta.items() if k not in ('scales', 'flip')}
    scales, flip = tta.get('scales'), bool(tta.get('flip'))
    text = 'on: each image at ' + (f'scales {", ".join(f"{s:g}" for s in scales)}' if scales
                                   else "the model's default scales")
    if flip:
        text += ', each also mirrored left-right'
    if scales:
        passes = len(scales) * (1 + flip)
        text += f' ({passes} forward pass{"es" if passes > 1 else ""} per image)'
    text += ''.join(f', {k}={v}' for k, v in rest.items())
    return text + '; the class probabilities are averaged'
