"""Loading checkpoint files the user named, and fitting their state dicts to task models.

Loading weights by name (``teacher_ckpt``, ``torchvision://``, URLs) builds on this module:
:mod:`kdbench.utils.weights` (:func:`~kdbench.utils.weights.load_task_weights`).

Every checkpoint file kdbench reads goes through :func:`load_local_checkpoint`: a
weights-only load with mmengine's checkpoint classes allow-listed; a file that needs more
(it pickles other Python objects, whose unpickling runs their code) is refused unless the
user consents (``--trust-checkpoint``, the config key ``trust_checkpoint = True``); any
other failure to read the file is a :class:`CorruptCheckpointError` naming it.

Consent is an argument (``trust``); code that builds models from a config, whose
constructors load weights (a Distiller's ``teacher_ckpt``, ``encoder_ckpt``, ``weights``,
``Pretrained`` init), runs inside :func:`trusted_checkpoints`, a ``with`` block that sets
the default of ``trust`` for the loads made in it (a context variable: nothing outside the
block, nor other threads, see it). Nothing here changes torch's or mmengine's global
behaviour: the safe-globals allow-list is active only for the duration of one
:func:`load_local_checkpoint` call.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import pickle
import re
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Union

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from .key_maps import is_released_layout, rename_hints, rename_released

_SHOWN_KEYS = 8
#: How to consent to loading a file that needs more than a weights-only load.
TRUST_HINT = ('--trust-checkpoint (tools/train.py, tools/test.py, tools/export_student.py, '
              'tools/explain.py, tools/visualize_cams.py) or trust_checkpoint = True in the '
              'config')
#: What torch's weights-only unpickler says when it refuses an object (as opposed to
#: failing on damaged bytes); the first group that matches names the object.
_REFUSED = re.compile(r'GLOBAL (\S+) (?:was not an allowed global|whose module)'
                      r"|but got <class '([^']+)'>"
                      r'|reduce for unrecognized function (.+?)(?: which belongs|$)', re.M)
_TRUSTED: contextvars.ContextVar = contextvars.ContextVar('kdbench_trust_checkpoint',
                                                          default=False)


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that exists but cannot be read as a checkpoint: truncated or
    damaged, not holding a dict, or not matching the hash in its name."""


class UntrustedCheckpointError(RuntimeError):
    """A checkpoint file that needs more than a weights-only load, loaded without consent
    (``--trust-checkpoint`` / ``trust_checkpoint = True``)."""


@contextlib.contextmanager
def trusted_checkpoints(trust: bool) -> Iterator[None]:
    """Within the block, :func:`load_local_checkpoint` calls without an explicit ``trust``
    use ``trust`` (the run's ``trust_checkpoint``); outside any block they refuse."""
    token = _TRUSTED.set(bool(trust))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def trusting() -> bool:
    """The consent of the innermost :func:`trusted_checkpoints` block (``False`` outside)."""
    return _TRUSTED.get()


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


def _first_line(err: BaseException) -> str:
    """The informative line of an exception (torch wraps the weights-only unpickler's
    message in paragraphs of advice)."""
    text = str(err)
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return f'{type(err).__name__}: {lines[0] if lines else "no details"}'


def _unreadable(path: str, err: BaseException) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f"Checkpoint '{path}' is truncated or corrupt: it could not be read "
        f'({_first_line(err)}). Copy or download it again (an interrupted transfer or save '
        'leaves a partial file).')


def refused_object(err: BaseException) -> Optional[str]:
    """The object (the ``GLOBAL`` name or class torch reports) for which a weights-only
    ``torch.load`` refused the file, or ``None`` when ``err`` is another failure."""
    found = _REFUSED.search(str(err)) if isinstance(err, pickle.UnpicklingError) else None
    return next(group for group in found.groups() if group) if found else None


def _described(obj: Any) -> str:
    if isinstance(obj, Tensor):
        return f'a tensor of shape {tuple(obj.shape)}'
    if isinstance(obj, nn.Module):
        return f'a whole {type(obj).__name__} module (save its state_dict() instead)'
    if isinstance(obj, (list, tuple, set)):
        return f'a {type(obj).__name__} of {len(obj)} items'
    return f'a {type(obj).__name__}'


def _load_trusted(path: str, map_location, refused: str) -> Any:
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise CorruptCheckpointError(
            f"Checkpoint '{path}' could not be read even with --trust-checkpoint "
            f'({_first_line(err)}): it holds {refused}, whose code is not importable here, '
            'or it is damaged.') from err
    print_log(f"Loaded '{path}' with weights_only=False as you consented "
              f'(--trust-checkpoint / trust_checkpoint): it holds {refused}, which a '
              'weights-only load refuses; unpickling it ran its code.',
              logger='current', level=logging.WARNING)
    return checkpoint


def load_local_checkpoint(filename: str, map_location: Union[str, Callable] = 'cpu',
                          trust: Optional[bool] = None) -> dict:
    """Load a local checkpoint file (``--resume``, ``load_from``, ``teacher_ckpt``,
    ``encoder_ckpt``, ``tools/test.py CHECKPOINT``, a download's hub-cache copy).

    A ``weights_only=True`` load with mmengine's checkpoint classes allow-listed for this
    call only (:func:`mmengine_safe_globals`): kdbench's and mmengine's checkpoints, plain
    state dicts and the released teachers load so. A file holding other Python objects
    loads with ``weights_only=False`` (and one warning line naming it) only when ``trust``
    is true; ``trust=None`` means the enclosing :func:`trusted_checkpoints` block's consent.

    Returns:
        The checkpoint: a dict (a state dict or an mmengine checkpoint).

    Raises:
        FileNotFoundError: no such file.
        UntrustedCheckpointError: the file needs more than a weights-only load and
            ``trust`` is false (the message names the file, the object and how to opt in).
        CorruptCheckpointError: any other failure to read the file (truncated, damaged,
            a zip with a missing record), or it holds no dict (a list, a tensor).
    """
    path = os.path.expanduser(filename)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint '{path}' can not be found.")
    try:
        with torch.serialization.safe_globals(mmengine_safe_globals()):
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        refused = refused_object(err)
        if refused is None:
            raise _unreadable(path, err) from err
        if not (trusting() if trust is None else trust):
            raise UntrustedCheckpointError(
                f"Refusing to load checkpoint '{path}': it holds {refused}, which a "
                'weights-only load does not allow, and unpickling it would run its code. '
                f'If you trust the file and where it came from, load it with {TRUST_HINT}; '
                'otherwise convert it to a plain state dict where you trust it.') from None
        checkpoint = _load_trusted(path, map_location, refused)
    if not isinstance(checkpoint, Mapping):
        raise CorruptCheckpointError(
            f"Checkpoint '{path}' holds {_described(checkpoint)}, not a checkpoint dict (a "
            "state dict, or an mmengine checkpoint with 'state_dict'): name a file written "
            'by tools/train.py or torch.save(model.state_dict(), PATH).')
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
