"""One check of every input a run needs, before the Runner is built.

A missing checkpoint or dataset otherwise stops a run one at a time, each after the
environment and config dump. :func:`missing_inputs` lists them all: the data roots and the
files each dataset declares (``required_files``) of every dataloader the run uses, every
``*_ckpt`` path of the model config (teacher and encoder checkpoints; ``weights`` given as
a path), ``load_from`` and the checkpoint to resume from or evaluate, and whether the work
dir can be written. Values with ``://`` (URLs, ``torchvision://NAME``) are not local files
and are not checked. :func:`resume_checkpoint` finds the checkpoint ``--resume`` continues,
naming the work dir when there is none.
"""
from __future__ import annotations

import os
import sys
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config

from kdbench.data_contract import required_files
from kdbench.registry import DATASETS

LOADERS = {'train': ('train_dataloader', 'val_dataloader'), 'test': ('test_dataloader',)}


class PreflightError(FileNotFoundError):
    """Some inputs of a run are missing; the message lists every one."""


def _local(path) -> bool:
    return isinstance(path, str) and '://' not in path


def _missing_file(path: str) -> bool:
    """``path`` is not a file, with ``~`` expanded as the loaders expand it."""
    return not os.path.isfile(os.path.expanduser(path))


def _is_file_key(key: str, value) -> bool:
    """``*_ckpt`` keys, and ``weights`` of torchvision networks when it is a path rather
    than a weights name such as ``'IMAGENET1K_V1'``."""
    if not _local(value):
        return False
    return key.endswith('_ckpt') or key == 'weights' and (
        os.path.sep in value or value.endswith(('.pth', '.pt')))


def _checkpoint_keys(node, path: str) -> Iterator[Tuple[str, str]]:
    """``(dotted key, value)`` of every checkpoint path under a config dict."""
    for key, value in (node or {}).items():
        if isinstance(value, dict):
            yield from _checkpoint_keys(value, f'{path}.{key}')
        elif _is_file_key(str(key), value):
            yield f'{path}.{key}', value


def _dataset_problems(dataset: dict, key: str) -> Iterator[str]:
    """Missing ``data_root`` or declared files of a dataset config (and wrapped ones)."""
    while isinstance(dataset, dict):
        root = dataset.get('data_root')
        if _local(root) and not os.path.isdir(root):
            yield f'{key}.data_root: folder not found: {root}'
        elif _local(root):
            cls = DATASETS.get(dataset.get('type')) if isinstance(dataset.get('type'), str) \
                else dataset.get('type')
            options = {k: v for k, v in dataset.items() if k != 'type'}
            for what, path in required_files(cls, options).items():
                if not os.path.exists(path):
                    yield f'{key} ({dataset["type"]}): {what} not found: {path}'
        dataset, key = dataset.get('dataset'), f'{key}.dataset'


def _writable(folder: str) -> bool:
    """Whether ``folder`` exists and is writable, or could be created."""
    folder = os.path.abspath(folder)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    return os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK)


def missing_inputs(cfg: Config, mode: str = 'train',
                   checkpoint: Optional[str] = None) -> List[str]:
    """One line per missing input of a ``'train'`` or ``'test'`` run of ``cfg``, each
    naming the config key to set and the path. ``checkpoint`` is the file to evaluate
    (test) or to resume from (train, when given explicitly)."""
    problems = []
    if mode == 'train':     # evaluation loads the trained weights, never pre-training ones
        problems += [f'{key}: file not found: {path}'
                     for key, path in _checkpoint_keys(cfg.get('model'), 'model')
                     if _missing_file(path)]
        if _local(cfg.get('load_from')) and _missing_file(cfg.load_from) and \
                cfg.load_from != checkpoint:
            problems.append(f'load_from: file not found: {cfg.load_from}')
    if _local(checkpoint) and _missing_file(checkpoint):
        problems.append(f'{"CHECKPOINT" if mode == "test" else "--resume"}: file not '
                        f'found: {checkpoint}')
    seen = []
    for loader in LOADERS[mode]:
        dataset = (cfg.get(loader) or {}).get('dataset')
        if dataset is not None and dataset not in seen:
            seen.append(dataset)
            problems += _dataset_problems(dataset, f'{loader}.dataset')
    if cfg.get('work_dir') and not _writable(cfg.work_dir):
        problems.append(f'work_dir: not writable: {cfg.work_dir} (set --work-dir)')
    return problems


def preflight(cfg: Config, mode: str = 'train', checkpoint: Optional[str] = None) -> None:
    """Raise :class:`PreflightError` listing every missing input (see
    :func:`missing_inputs`); ``tools/train.py`` and ``tools/test.py`` call it before
    building the Runner."""
    problems = missing_inputs(cfg, mode, checkpoint)
    if problems:
        name = cfg.filename or 'the config'
        lines = '\n'.join(f'  - {p}' for p in problems)
        raise PreflightError(
            f'{len(problems)} missing input(s) for {name} (nothing was run):\n{lines}\n'
            'Set each key in the config or with --cfg-options KEY=PATH (relative paths start '
            'at the current directory; --cfg-options data_root=DIR moves every dataloader). '
            'See docs/reliability.md.')


def resume_checkpoint(work_dir: str, required: bool = True) -> Optional[str]:
    """The checkpoint ``--resume`` continues: the one ``work_dir/last_checkpoint`` names
    (as mmengine's auto-resume reads it). When there is none: None if not ``required``
    (``--resume auto``), else :class:`PreflightError` naming the work dir and what to do."""
    latest = os.path.join(work_dir, 'last_checkpoint')
    if os.path.isfile(latest):
        with open(latest) as f:
            checkpoint = f.read().strip()
        if checkpoint:
            return checkpoint
    if not required:
        return None
    where = 'has no last_checkpoint file' if os.path.isdir(work_dir) else 'does not exist'
    raise PreflightError(
        f'--resume: nothing to resume from: the work dir {work_dir} {where} (nothing was '
        'run). Check --work-dir (the run to continue wrote its checkpoints and '
        'last_checkpoint there), name a checkpoint with --resume CKPT, drop --resume to '
        'start a new run, or use --resume auto to resume when there is a checkpoint and '
        'start a new run otherwise.')


def preflight_or_exit(cfg: Config, mode: str = 'train', checkpoint: Optional[str] = None) -> None:
    """For the tools: :func:`preflight`, printing the list and exiting with status 1 (no
    traceback) when inputs are missing."""
    try:
        preflight(cfg, mode, checkpoint)
    except PreflightError as err:
        print(err, file=sys.stderr)
        sys.exit(1)
