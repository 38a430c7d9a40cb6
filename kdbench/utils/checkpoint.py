"""Checkpoint loading for torch >= 2.6 and strict loading of task-model weights."""
from __future__ import annotations

import os
from typing import Dict, Mapping

import torch
from torch import Tensor, nn

_SHOWN_KEYS = 8


def load_local_checkpoint(filename: str, map_location='cpu') -> dict:
    """Load a local checkpoint file that the user named (``--resume``, ``load_from``,
    ``teacher_ckpt``, ``tools/test.py CHECKPOINT``).

    torch >= 2.6 loads with ``weights_only=True`` by default, which rejects what mmengine
    pickles into its checkpoints (the message hub's ``HistoryBuffer`` with bound methods,
    numpy arrays). Files the user points at are trusted, as torch < 2.6 did.
    """
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"Checkpoint '{filename}' can not be found.")
    return torch.load(filename, map_location=map_location, weights_only=False)


def use_trusted_local_loader() -> None:
    """Make mmengine's ``CheckpointLoader`` (resume, ``load_from``) use
    :func:`load_local_checkpoint` for local paths."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_local_checkpoint)


def _strip(state: Mapping[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def extract_state_dict(checkpoint: Mapping, model: nn.Module) -> Dict[str, Tensor]:
    """The task model's weights inside a checkpoint, whatever wrote it.

    Accepts an mmengine checkpoint (``state_dict`` key), a DDP-wrapped one (``module.``),
    a Distiller checkpoint (its ``student.`` weights are the task model), or a plain state
    dict of the network a task model wraps (e.g. a torchvision ResNet file loaded into a
    classifier holding it as ``net``), or the reverse (a classifier or Distiller checkpoint
    loaded into the bare network, as ``tv_resnet*(weights=PATH)`` does).
    """
    state = dict(checkpoint.get('state_dict', checkpoint))
    if state and all(k.startswith('module.') for k in state):
        state = _strip(state, 'module.')
    if any(k.startswith('student.') for k in state):
        state = _strip(state, 'student.')
    expected = set(model.state_dict())
    if set(state) != expected:
        for child, _ in model.named_children():
            prefixed = {f'{child}.{k}': v for k, v in state.items()}
            if set(prefixed) == expected:
                return prefixed
        # The reverse: a task model's checkpoint (``net.*``) loaded into the bare network.
        for head in sorted({k.split('.', 1)[0] for k in state if '.' in k}):
            stripped = _strip(state, f'{head}.')
            if set(stripped) == expected:
                return stripped
    return state


def _listed(keys) -> str:
    keys = sorted(keys)
    more = f' ... (+{len(keys) - _SHOWN_KEYS} more)' if len(keys) > _SHOWN_KEYS else ''
    return ', '.join(keys[:_SHOWN_KEYS]) + more


def load_task_weights(model: nn.Module, path: str, owner: str = 'teacher',
                      source: str = 'model.teacher_ckpt') -> None:
    """Load a task model's weights strictly from ``path``.

    Args:
        model: the task model (or bare network) to fill.
        path: checkpoint file.
        owner: how the model is called in error messages.
        source: where the user set ``path`` (a config key or argument), for messages.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RuntimeError: missing, unexpected or shape-mismatched keys (listed by name).
    """
    path = os.path.expanduser(path) if path else path
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(
            f"The {owner} checkpoint '{path}' does not exist: set {source} to an existing "
            f'file (e.g. --cfg-options {source}=PATH), or train the {owner} first with '
            'tools/train.py and its config.')
    state = extract_state_dict(load_local_checkpoint(path), model)
    load_state_strictly(model, state, path, owner)


def load_state_strictly(model: nn.Module, state: Mapping[str, Tensor], path: str,
                        owner: str) -> None:
    """``model.load_state_dict(state, strict=True)`` with missing, unexpected and
    shape-mismatched keys listed by name in one clear error naming ``path``."""
    expected = model.state_dict()
    missing = set(expected) - set(state)
    unexpected = set(state) - set(expected)
    shapes = [f'{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}'
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        problems = []
        if missing:
            problems.append(f'missing keys: {_listed(missing)}')
        if unexpected:
            problems.append(f'unexpected keys: {_listed(unexpected)}')
        if shapes:
            problems.append(f'shape mismatch: {"; ".join(shapes[:_SHOWN_KEYS])}')
        raise RuntimeError(
            f"The {owner} checkpoint '{path}' does not match the {owner} model "
            f'{type(model).__name__}: ' + ' | '.join(problems) +
            f'. Check that the {owner} config (architecture, num_classes) is the one '
            'the checkpoint was trained with.')
    model.load_state_dict(state, strict=True)
