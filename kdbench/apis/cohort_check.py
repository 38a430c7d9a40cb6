"""What the members of a cohort must share, checked on their configs before any build.

Members train from one dataloader and one teacher, so they must agree on everything that
decides the batches and the teacher's outputs (:data:`SHARED_KEYS`, and
:data:`TEACHER_KEYS` among distillation members); each member keeps its own model,
methods, optimizer, schedules, hooks, validation and work dir.
"""
from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence

from mmengine.config import Config

from .cohort_runner import CohortError

#: Keys every member shares: the batches (the whole train dataloader: dataset, pipeline,
#: batch size, sampler, workers), the schedule length, the seed and the environment.
SHARED_KEYS = ('train_dataloader', 'train_cfg.by_epoch', 'train_cfg.type',
               'train_cfg.max_epochs', 'randomness', 'env_cfg', 'launcher',
               'default_hooks.sampler_seed')
#: Keys the distillation members (``model.teacher`` set) share: the teacher.
TEACHER_KEYS = ('model.teacher', 'model.teacher_ckpt')
_MISSING = '<not set>'


def member_name(cfg: Config) -> str:
    """A member's name: its config file's stem (what its runner's logger is named after)."""
    return os.path.splitext(os.path.basename(cfg.filename or 'config'))[0]


def check_cohort(cfgs: Sequence[Config]) -> None:
    """Raise :class:`CohortError` naming the key and the configs when the members of
    ``cfgs`` cannot train as one cohort: fewer than one, duplicate names or work dirs, no
    fixed seed, a distributed launcher, or a difference in a shared key."""
    if not cfgs:
        raise CohortError('A cohort needs at least one member config.')
    _check_distinct([member_name(cfg) for cfg in cfgs], 'config file names',
                    'their runners name loggers after them')
    _check_distinct([os.path.abspath(cfg.work_dir) for cfg in cfgs], 'work dirs',
                    'each member writes its own checkpoints and logs')
    for cfg in cfgs:
        if (cfg.get('randomness') or {}).get('seed') is None:
            raise CohortError(f'{member_name(cfg)}: randomness.seed is not set; cohort members '
                              'need a fixed seed (--seed N) to train as their runs alone.')
        if cfg.get('launcher', 'none') != 'none':
            raise CohortError(f'{member_name(cfg)}: launcher={cfg.launcher!r}; cohorts run in '
                              'one process for now (no torchrun or slurm).')
    _check_shared(cfgs, SHARED_KEYS)
    _check_shared([cfg for cfg in cfgs if 'teacher' in cfg.model], TEACHER_KEYS)


def _check_distinct(values: List[str], what: str, why: str) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise CohortError(f'Cohort members need distinct {what} ({why}): {value!r} '
                              'appears twice.')
        seen.add(value)


def config_difference(first: Config, second: Config) -> Optional[str]:
    """The first key (dotted, list items by index) of :data:`SHARED_KEYS`, then of
    :data:`TEACHER_KEYS` when both configs distil, in which two member configs differ;
    ``None`` when they agree on every key a cohort shares."""
    keys = SHARED_KEYS
    if 'teacher' in first.model and 'teacher' in second.model:
        keys += TEACHER_KEYS
    return _difference(first.to_dict(), second.to_dict(), keys)


def _difference(first: dict, second: dict, keys: Sequence[str]) -> Optional[str]:
    for key in keys:
        where = first_difference(_lookup(first, key), _lookup(second, key), key)
        if where is not None:
            return where
    return None


def _check_shared(cfgs: Sequence[Config], keys: Sequence[str]) -> None:
    if len(cfgs) < 2:
        return
    plain = [cfg.to_dict() for cfg in cfgs]
    for key in keys:
        for cfg, values in zip(cfgs[1:], plain[1:]):
            where = _difference(plain[0], values, [key])
            if where is not None:
                raise CohortError(
                    f'Cohort members differ in {where}: {member_name(cfgs[0])} has '
                    f'{_lookup(plain[0], where)!r}, {member_name(cfg)} has '
                    f'{_lookup(values, where)!r}. Every member must share {key} '
                    '(docs/cohorts.md); train them in separate cohorts or alone.')


def _lookup(values: dict, key: str) -> Any:
    node: Any = values
    for part in key.split('.'):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return _plain(node)


def _plain(value: Any) -> Any:
    """Config dicts as plain dicts (lists and tuples compared alike)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def first_difference(first: Any, second: Any, path: str) -> Optional[str]:
    """The dotted key (list items by index) of the first difference between two plain
    config values under ``path``, or ``None`` when they are equal."""
    if isinstance(first, dict) and isinstance(second, dict):
        for key in sorted(set(first) | set(second), key=str):
            found = first_difference(first.get(key, _MISSING), second.get(key, _MISSING),
                                     f'{path}.{key}')
            if found is not None:
                return found
        return None
    if isinstance(first, list) and isinstance(second, list) and len(first) == len(second):
        for index, (a, b) in enumerate(zip(first, second)):
            found = first_difference(a, b, f'{path}.{index}')
            if found is not None:
                return found
        return None
    return None if first == second else path
