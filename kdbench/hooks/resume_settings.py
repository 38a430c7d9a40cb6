"""Which optimizer, schedule and batch settings a resumed run may change.

mmengine's resume loads the checkpoint's optimizer state (its parameter groups: the lr as
the schedule left it, momentum, weight decay, ...) and its parameter schedulers' state
(every scheduler argument, ``end`` included) over the ones built from the config, so the
config's values of those keys would be shown and not used. :func:`setting_changes` lists
the keys of :data:`COMPARED` whose value differs between the checkpoint's stored config and
the current one, except :data:`RESUMABLE` (how long the run trains and how often it
validates: the loop reads them from the config, and the restored state stays valid).
A scheduler without ``end`` ends at ``train_cfg.max_epochs`` (``max_iters`` when not
``by_epoch``) as mmengine builds it, so extending training changes that ``end`` unless the
config names it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from mmengine.config import Config

#: Config keys (and the keys under them) compared on resume.
COMPARED = ('optim_wrapper', 'param_scheduler', 'auto_scale_lr', 'train_cfg',
            'train_dataloader.batch_size')
#: Keys that may change on resume: the loop reads them from the config.
RESUMABLE = ('train_cfg.max_epochs', 'train_cfg.max_iters', 'train_cfg.val_interval',
             'train_cfg.val_begin')
#: Keys (and the keys under them) whose config value a resume replaces with the
#: checkpoint's optimizer, loss-scaler or scheduler state; the others of COMPARED are used.
FROM_CHECKPOINT = ('optim_wrapper.optimizer', 'optim_wrapper.paramwise_cfg',
                   'optim_wrapper.constructor', 'optim_wrapper.loss_scale', 'param_scheduler',
                   'auto_scale_lr')


class Unset:
    """The value of a key a config does not set."""

    def __repr__(self) -> str:
        return 'unset'


UNSET = Unset()


@dataclass(frozen=True)
class SettingChange:
    """One compared key whose value differs between the checkpoint's run and this config;
    ``note`` says where a derived value comes from."""
    key: str
    checkpoint: Any
    config: Any
    note: str = ''

    @property
    def from_checkpoint(self) -> bool:
        """Whether resuming uses the checkpoint's state instead of the config's value."""
        return _under(self.key, FROM_CHECKPOINT)

    def describe(self) -> str:
        note = f' ({self.note})' if self.note else ''
        return f'{self.key}: checkpoint {self.checkpoint!r}, this config {self.config!r}{note}'


def _under(key: str, prefixes: Tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + '.') for p in prefixes)


def _flatten(value, prefix: str, out: Dict[str, Any]) -> None:
    """``dotted key -> leaf value``: dicts and lists holding dicts are descended into
    (list items by index); other lists are leaves (tuples compared as lists)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f'{prefix}.{key}', out)
    elif isinstance(value, (list, tuple)) and any(isinstance(v, dict) for v in value):
        for index, item in enumerate(value):
            _flatten(item, f'{prefix}.{index}', out)
    else:
        out[prefix] = list(value) if isinstance(value, tuple) else value


def _default_ends(cfg: Config) -> Dict[str, Tuple[Any, str]]:
    """``param_scheduler.<i>.end -> (value, note)`` of the schedulers without ``end``:
    the run length mmengine gives them."""
    train = cfg.get('train_cfg') or {}
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    ends = {}
    for index, scheduler in enumerate(schedulers):
        if isinstance(scheduler, dict) and 'end' not in scheduler:
            length = 'max_epochs' if scheduler.get('by_epoch', True) else 'max_iters'
            ends[f'param_scheduler.{index}.end'] = (
                train.get(length, UNSET), f'unset, so train_cfg.{length}')
    return ends


def compared_settings(cfg: Config) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """The compared keys of ``cfg`` as ``dotted key -> value`` with schedulers' default
    ``end`` filled in, and ``key -> note`` for those filled-in values."""
    values: Dict[str, Any] = {}
    for key in COMPARED:
        node = cfg
        for part in key.split('.'):
            node = node.get(part, UNSET) if hasattr(node, 'get') else UNSET
        if node is not UNSET:
            _flatten(node, key, values)
    ends = _default_ends(cfg)
    values.update({key: value for key, (value, _) in ends.items()})
    return values, {key: note for key, (_, note) in ends.items()}


def setting_changes(saved: Config, current: Config) -> List[SettingChange]:
    """The compared keys (:data:`COMPARED`, not :data:`RESUMABLE`) whose value differs
    between ``saved`` (the checkpoint's stored config) and ``current``, in key order."""
    before, before_notes = compared_settings(saved)
    now, now_notes = compared_settings(current)
    changes = []
    for key in sorted(set(before) | set(now)):
        old, new = before.get(key, UNSET), now.get(key, UNSET)
        if old != new and not _under(key, RESUMABLE):
            note = now_notes.get(key) or before_notes.get(key, '')
            changes.append(SettingChange(key, old, new, note))
    return changes
