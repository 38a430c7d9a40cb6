"""Key renames between checkpoint layouts: the released CIFAR-100 teachers and hints for
files no map covers.

The teachers nearly every CIFAR KD paper uses (``cifar_teachers/<arch>_vanilla/
ckpt_epoch_240.pth``, from RepDistiller's release) are dicts ``{'epoch', 'model',
'accuracy', 'optimizer'}`` with the network's state dict under ``model``, in the official
model definitions' key names. Each kdbench network declares, next to its definition, how
its own keys are called there: a class attribute ``RELEASED_KEY_MAP``, a sequence of
``(pattern, replacement)`` regular-expression substitutions applied in order to a kdbench
key (``re.sub``; a replacement may be a function of the match). The loader inverts it over
the model's own keys, so one declaration serves loading and writing.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Dict, Mapping, Optional, Sequence, Tuple

from torch import Tensor, nn

#: Keys of the released teachers' checkpoint dicts.
RELEASED_KEYS = frozenset({'epoch', 'model', 'accuracy', 'optimizer'})


def released_key_map(model: nn.Module) -> Optional[Tuple[str, nn.Module, Sequence]]:
    """``(prefix, network, RELEASED_KEY_MAP)`` of ``model`` or of one of its children
    (a task model holds its network as ``net``); ``None`` when none declares a map."""
    for name, module in [('', model), *model.named_children()]:
        key_map = getattr(type(module), 'RELEASED_KEY_MAP', None)
        if key_map is not None:
            return (f'{name}.' if name else ''), module, key_map
    return None


def released_name(key: str, key_map: Sequence) -> str:
    """The released checkpoint's name of the kdbench key ``key``."""
    for pattern, replacement in key_map:
        key = re.sub(pattern, replacement, key)
    return key


def to_released(state: Mapping[str, Tensor], model: nn.Module) -> Dict[str, Tensor]:
    """``model``'s network state dict in the released layout's key names (what the
    released files hold under ``model``); the inverse of :func:`rename_released`."""
    found = released_key_map(model)
    prefix, _, key_map = found if found else ('', None, ())
    return {released_name(k[len(prefix):], key_map): v for k, v in state.items()
            if k.startswith(prefix)}


def is_released_layout(checkpoint) -> bool:
    """A dict like the released CIFAR teachers: the state dict under ``model``."""
    return (isinstance(checkpoint, Mapping) and 'model' in checkpoint
            and set(checkpoint) <= RELEASED_KEYS | {'best_acc', 'lr'}
            and isinstance(checkpoint['model'], Mapping))


def rename_released(state: Mapping[str, Tensor], model: nn.Module) -> Dict[str, Tensor]:
    """``state`` (keys in the released model's names, without a task-model prefix) in
    ``model``'s key names, renamed by its network's ``RELEASED_KEY_MAP``; keys the map
    does not produce are kept, under the network's prefix (so a strict load names them)."""
    found = released_key_map(model)
    prefix, net, key_map = found if found else ('', model, ())
    lookup = {released_name(k, key_map): prefix + k for k in net.state_dict()}
    return {lookup.get(k, prefix + k): v for k, v in state.items()}


def _substitution(old: str, new: str) -> Tuple[str, str]:
    """The differing middle of two dotted keys: ``('a.downsample.0.w', 'a.shortcut.0.w')``
    -> ``('downsample', 'shortcut')``."""
    a, b = old.split('.'), new.split('.')
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    return '.'.join(a[head:len(a) - tail]), '.'.join(b[head:len(b) - tail])


def rename_hints(missing: Mapping[str, Tensor], unexpected: Mapping[str, Tensor],
                 shown: int = 5) -> str:
    """Renames that would turn unexpected checkpoint keys into missing model keys: each
    unexpected key is paired with the missing key of the same shape and last name
    (``weight``, ``running_mean``, ...) sharing the most leading and trailing parts; the
    differing middles are counted. Returns ``''`` when nothing pairs up."""
    pool = dict(missing)
    counts: Counter = Counter()
    for old in sorted(unexpected):
        shape, last = tuple(unexpected[old].shape), old.rsplit('.', 1)[-1]
        best, best_score = None, float('-inf')
        for new, tensor in pool.items():
            if tuple(tensor.shape) != shape or new.rsplit('.', 1)[-1] != last:
                continue
            mid_old, mid_new = _substitution(old, new)
            score = -sum(len(mid.split('.')) for mid in (mid_old, mid_new) if mid)
            if score > best_score:
                best, best_score = new, score
        if best is not None:
            counts[_substitution(old, best)] += 1
            del pool[best]
    if not counts:
        return ''
    listed = ', '.join(f"'{a}' -> '{b}' ({n} keys)" for (a, b), n in counts.most_common(shown))
    return (f' | renames that would pair them (checkpoint -> model, by shape): {listed}; '
            'declare them as RELEASED_KEY_MAP beside the network (see docs/weights.md)')
