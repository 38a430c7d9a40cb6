"""One check of every input a run needs, before the Runner is built.

A missing checkpoint or dataset otherwise stops a run one at a time, each after the
environment and config dump. :func:`missing_inputs` lists them all: the data roots and the
files each dataset declares (``required_files``) of every dataloader the run uses, every
``*_ckpt`` path of the model config (teacher and encoder checkpoints; ``weights`` given as
a path), ``load_from`` and the checkpoint to resume from or evaluate, and whether the work
dir can be created and written. Values with ``://`` (URLs, ``torchvision://NAME``) are
not local files and are not checked. The message of :func:`preflight` adds how to prepare
each dataset with missing data (its class's ``HOW_TO_PREPARE``). :func:`resume_checkpoint`
finds the checkpoint ``--resume`` continues, naming the work dir when there is none.
"""
from __future__ import annotations

import os
import sys
import tempfile
from typing import Iterator, List, Optional, Tuple

from mmengine.config import Config

from kdbench.data_contract import how_to_prepare, required_files
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


def _dataset_class(dataset: dict):
    kind = dataset.get('type')
    return DATASETS.get(kind) if isinstance(kind, str) else kind


def _dataset_problems(dataset: dict, key: str) -> Iterator[Tuple[str, Optional[str]]]:
    """``(line, hint)`` per missing ``data_root`` or declared file of a dataset config (and
    wrapped ones); the hint says how to prepare the data (the class's ``HOW_TO_PREPARE``),
    ``None`` where the class does not."""
    while isinstance(dataset, dict):
        root = dataset.get('data_root')
        cls = _dataset_class(dataset) if _local(root) else None
        hint = how_to_prepare(cls)
        hint = hint and f'{dataset["type"]} (docs/data.md): {hint}'
        if _local(root) and not os.path.isdir(root):
            yield f'{key}.data_root: folder not found: {root}', hint
        elif _local(root):
            options = {k: v for k, v in dataset.items() if k != 'type'}
            for what, path in required_files(cls, options).items():
                if not os.path.exists(path):
                    yield f'{key} ({dataset["type"]}): {what} not found: {path}', hint
        dataset, key = dataset.get('dataset'), f'{key}.dataset'


def _data_problems(cfg: Config, mode: str) -> List[Tuple[str, Optional[str]]]:
    """:func:`_dataset_problems` of every dataset the ``mode`` run reads, each once."""
    seen, problems = [], []
    for loader in LOADERS[mode]:
        dataset = (cfg.get(loader) or {}).get('dataset')
        if dataset is not None and dataset not in seen:
            seen.append(dataset)
            problems += _dataset_problems(dataset, f'{loader}.dataset')
    return problems


def _writable(folder: str) -> bool:
    """Whether ``folder`` can be created (if missing) and written: a temporary folder is
    made and removed in ``folder``, or in its nearest existing parent (which must then be a
    folder), so the check leaves nothing behind."""
    folder = os.path.abspath(folder)         # as the Runner makes it (no ~ expansion)
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        return False
    try:
        os.rmdir(tempfile.mkdtemp(prefix='.kdbench_preflight_', dir=folder))
    except OSError:
        return False
    return True


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
    problems += [line for line, _ in _data_problems(cfg, mode)]
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
        hints = sorted({hint for _, hint in _data_problems(cfg, mode) if hint})
        prepare = ''.join(f'To prepare the data of {hint}.\n' for hint in hints)
        raise PreflightError(
            f'{len(problems)} missing input(s) for {name} (nothing was run):\n{lines}\n'
            f'{prepare}'
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
