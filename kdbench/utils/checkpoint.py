"""Loading checkpoint files the user named, and fitting their state dicts to task models.

Loading weights by name (``teacher_ckpt``, ``torchvision://``, URLs) builds on this module:
:mod:`kdbench.utils.weights` (:func:`~kdbench.utils.weights.load_task_weights`).

Nothing here changes torch's or mmengine's global behaviour: the safe-globals allow-list is
active only for the duration of one :func:`load_local_checkpoint` call.
"""
from __future__ import annotations

import logging
import os
import pickle
import re
from typing import Callable, Dict, List, Mapping, Union

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from .key_maps import is_released_layout, rename_hints, rename_released

_SHOWN_KEYS = 8
#: What a weights-only load of a truncated or damaged file raises (besides torch's zip
#: reader's RuntimeError).
_DAMAGED = (EOFError, KeyError, ValueError, pickle.UnpicklingError)


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that exists but cannot be read (truncated or damaged)."""


def _history_buffer_attr(obj, name: str):
    """What mmengine's message hub pickles as ``getattr(HistoryBuffer, 'min')`` (its
    statistics methods); every other ``getattr`` stays forbidden."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in ('min', 'max', 'mean', 'current'):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'getattr({obj!r}, {name!r}) is not allowed')


def mmengine_safe_globals() -> List[Union[Callable, tuple]]:
    """The classes an mmengine Runner checkpoint holds besides tensors (the message hub's
    ``HistoryBuffer``, numpy arrays and scalars), for ``torch.serialization.safe_globals``."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    core = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray
    names = []
    for package in ('numpy.core', 'numpy._core'):       # numpy 1 and 2 pickle names
        names += [(core._reconstruct, f'{package}.multiarray._reconstruct'),
                  (core.scalar, f'{package}.multiarray.scalar')]
    dtypes = [getattr(np.dtypes, n) for n in dir(getattr(np, 'dtypes', None))
              if n.endswith('DType')]
    return [HistoryBuffer, np.ndarray, np.dtype, *dtypes, *names,
            (_history_buffer_attr, 'builtins.getattr')]


def _damaged(path: str, err: BaseException) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"Checkpoint '{path}' is truncated or corrupt ({type(err).__name__}: "
        f'{str(err).splitlines()[0] if str(err) else "no details"}): it could not be read. '
        'Copy or download it again (an interrupted transfer or save leaves a partial file).')


def _is_damaged(err: BaseException) -> bool:
    """Whether ``torch.load`` failed on the file's bytes (not on an unsafe global)."""
    if isinstance(err, RuntimeError):
        return 'PytorchStreamReader' in str(err) or 'zip archive' in str(err)
    if isinstance(err, pickle.UnpicklingError):
        return 'Weights only load failed' not in str(err)
    return isinstance(err, _DAMAGED)


def _torch_load(path: str, map_location, weights_only: bool):
    try:
        return torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as err:
        if _is_damaged(err):
            raise _damaged(path, err) from err
        raise


def load_local_checkpoint(filename: str, map_location: Union[str, Callable] = 'cpu') -> dict:
    """Load a local checkpoint file that the user named (``--resume``, ``load_from``,
    ``teacher_ckpt``, ``encoder_ckpt``, ``tools/test.py CHECKPOINT``).

    First with ``weights_only=True`` and mmengine's checkpoint classes allow-listed for this
    call only (:func:`mmengine_safe_globals`): kdbench's and mmengine's checkpoints and plain
    state dicts load so. A file holding other Python objects is trusted because the user
    named it: it loads with ``weights_only=False`` and one warning line naming it.

    Raises:
        FileNotFoundError: no such file.
        CorruptCheckpointError: the file is truncated or damaged (named in the message).
    """
    path = os.path.expanduser(filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint '{path}' can not be found.")
    try:
        with torch.serialization.safe_globals(mmengine_safe_globals()):
            return _torch_load(path, map_location, weights_only=True)
    except pickle.UnpicklingError as err:           # an object outside the allow-list
        found = re.search(r"GLOBAL (\S+)|but got <class '([^']+)'", str(err))
        reason = next((g for g in found.groups() if g), '') if found else 'other objects'
    checkpoint = _torch_load(path, map_location, weights_only=False)
    print_log(f"Loaded '{path}' with weights_only=False because you named it (it holds "
              f'{reason}, not allowed in a weights-only load); load only files you trust.',
              logger='current', level=logging.WARNING)
    return checkpoint


def strip_prefix(state: Mapping[str, Tensor], prefix: str) -> Dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def unwrap_state_dict(checkpoint: Mapping) -> Dict[str, Tensor]:
    """The state dict inside a checkpoint: under ``state_dict`` (mmengine), under ``model``
    (the released CIFAR teachers' layout) or the checkpoint itself, without DDP's
    ``module.`` prefix and with a Distiller's ``student.`` weights only."""
    state = dict(checkpoint['model'] if is_released_layout(checkpoint)
                 else checkpoint.get('state_dict', checkpoint))
    if state and all(k.startswith('module.') for k in state):
        state = strip_prefix(state, 'module.')
    if any(k.startswith('student.') for k in state):
        state = strip_prefix(state, 'student.')
    return state


def extract_state_dict(checkpoint: Mapping, model: nn.Module) -> Dict[str, Tensor]:
    """The task model's weights inside a checkpoint, whatever wrote it.

    Accepts what :func:`unwrap_state_dict` does (an mmengine checkpoint, DDP-wrapped, of a
    Distiller, a released CIFAR teacher renamed by its network's ``RELEASED_KEY_MAP``),
    then fits the keys to ``model``: a plain state dict of the network a task model wraps
    (e.g. a torchvision ResNet file loaded into a classifier holding it as ``net``), the
    reverse (a classifier or Distiller checkpoint loaded into the bare network, as
    ``tv_resnet*(weights=PATH)`` does), or the KD literature's key names
    (:mod:`kdbench.utils.key_maps`).
    """
    state = unwrap_state_dict(checkpoint)
    if is_released_layout(checkpoint):
        return rename_released(state, model)
    expected = set(model.state_dict())
    candidates = [state]
    # The task model's network checkpoint loaded into the task model (``net.`` added) ...
    candidates += [{f'{child}.{k}': v for k, v in state.items()}
                   for child, _ in model.named_children()]
    # ... the reverse (a task model's ``net.*`` loaded into the bare network) ...
    candidates += [strip_prefix(state, f'{head}.')
                   for head in sorted({k.split('.', 1)[0] for k in state if '.' in k})]
    # ... and a plain state dict in the KD literature's key names (the network's key map).
    candidates.append(rename_released(state, model))
    for candidate in candidates:
        if set(candidate) == expected:
            return candidate
    # None fits: the closest, so that the error lists the keys that really differ.
    return max(candidates, key=lambda c: len(expected & set(c)))


def _listed(keys) -> str:
    keys = sorted(keys)
    more = f' ... (+{len(keys) - _SHOWN_KEYS} more)' if len(keys) > _SHOWN_KEYS else ''
    return ', '.join(keys[:_SHOWN_KEYS]) + more


def load_state_strictly(model: nn.Module, state: Mapping[str, Tensor], path: str,
                        owner: str) -> None:
    """``model.load_state_dict(state, strict=True)`` with missing, unexpected and
    shape-mismatched keys listed by name in one clear error naming ``path`` (and the
    renames that would pair the missing keys with the unexpected ones)."""
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
        hints = rename_hints({k: expected[k] for k in missing},
                             {k: state[k] for k in unexpected})
        raise RuntimeError(
            f"The {owner} checkpoint '{path}' does not match the {owner} model "
            f'{type(model).__name__}: ' + ' | '.join(problems) + hints +
            f'. Check that the {owner} config (architecture, num_classes) is the one '
            'the checkpoint was trained with.')
    model.load_state_dict(state, strict=True)
