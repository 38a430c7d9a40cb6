"""Optimizer parameter groups: one group per distinct set of options, described by module.

mmengine's ``DefaultOptimWrapperConstructor`` with a ``paramwise_cfg`` makes one group per
parameter tensor and logs a line per tensor (plus a warning per frozen tensor: 346 for a
ResNet-101 teacher), and without one it hands the frozen teacher to the optimizer.
:class:`ParamGroupsConstructor` keeps mmengine's ``paramwise_cfg`` rules (``custom_keys``
with ``lr_mult``/``decay_mult``, ``norm_decay_mult``, ...), optimizes only trainable
tensors, merges tensors with equal options into one group per part of the model, and logs
one summary line and one table (:func:`param_group_table`, also in ``tools/recipe.py``).
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Dict, List, Optional, Sequence

from mmengine.logging import MMLogger, print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn
from torch.optim import Optimizer

from kdbench.registry import OPTIM_WRAPPER_CONSTRUCTORS

#: Option columns of the table, in this order, when some group has them.
COLUMNS = ('lr', 'weight_decay', 'momentum', 'nesterov', 'betas')
_MAX_PREFIXES = 4
_QUIET = ('paramwise_options -- ', 'is skipped since its requires_grad=False')


class _DropPerTensorLines(logging.Filter):
    """Drops mmengine's per-tensor ``paramwise_options`` and ``requires_grad`` lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in _QUIET)


def section(name: str) -> str:
    """The part of the model a parameter belongs to: its first name component, the first
    two for a distillation method's (``methods.tat``): methods never share a group with
    the student, as the official TaT code gives its embeddings their own group."""
    parts = name.split('.')
    return '.'.join(parts[:2]) if parts[0] == 'methods' and len(parts) > 2 else parts[0]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class ParamGroupsConstructor(DefaultOptimWrapperConstructor):
    """``DefaultOptimWrapperConstructor`` with merged groups, no frozen tensors, short logs.

    Trainable tensors with the same options (lr, weight decay, ... after ``paramwise_cfg``)
    in the same :func:`section` form one group, in the order of the model's parameters.
    Frozen tensors (the Distiller's teacher) are left out and counted in one log line.
    Same config keys as mmengine's constructor::

        optim_wrapper = dict(constructor='ParamGroupsConstructor',
                             optimizer=dict(type='SGD', lr=0.007, momentum=0.9),
                             paramwise_cfg=dict(custom_keys={'net.decoder': dict(lr_mult=10)}))
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        # An empty paramwise_cfg would make mmengine hand every tensor over, frozen too.
        super().__init__(optim_wrapper_cfg, paramwise_cfg or dict(custom_keys={}))

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module=None) -> None:
        if prefix:                       # mmengine's recursion into children
            return super().add_params(params, module, prefix, is_dcn_module)
        logger = MMLogger.get_current_instance()
        quiet = _DropPerTensorLines()
        logger.addFilter(quiet)
        try:
            per_tensor: List[dict] = []
            super().add_params(per_tensor, module, prefix, is_dcn_module)
        finally:
            logger.removeFilter(quiet)
        names = {id(p): n for n, p in module.named_parameters()}
        merged: Dict[tuple, dict] = {}
        for group in per_tensor:
            options = {k: v for k, v in group.items() if k != 'params'}
            (param,) = group['params']
            key = (section(names[id(param)]), repr(sorted(options.items())))
            merged.setdefault(key, dict(params=[], **options))['params'].append(param)
        params.extend(merged.values())

    def __call__(self, model: nn.Module) -> OptimWrapper:
        inner = model.module if hasattr(model, 'module') else model
        wrapper = super().__call__(model)
        log_param_groups(inner, wrapper.optimizer)
        return wrapper


def frozen_summary(model: nn.Module) -> str:
    """One line on the tensors left out of the optimizer (``requires_grad=False``)."""
    frozen = Counter(section(n) for n, p in model.named_parameters() if not p.requires_grad)
    if not frozen:
        return 'no frozen parameters'
    total = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    parts = ', '.join(f'{s}.* ({c} tensors)' for s, c in sorted(frozen.items()))
    return f'frozen, not optimized: {parts}, {total / 1e6:.2f} M values'


def group_modules(model: nn.Module, groups: Sequence[Sequence[nn.Parameter]]) -> List[str]:
    """The modules of each group: the shortest name prefixes, never shorter than the
    :func:`section`, whose trainable tensors all fall in that group
    (``student.net.encoder``, ``methods.tat``); at most a few listed (``+N more``)."""
    owner = {id(p): i for i, group in enumerate(groups) for p in group}
    named = [(n, owner[id(p)]) for n, p in model.named_parameters() if id(p) in owner]
    groups_under: Dict[str, set] = {}
    for name, index in named:
        parts = name.split('.')
        for k in range(len(parts) + 1):
            groups_under.setdefault('.'.join(parts[:k]), set()).add(index)
    labels: List[List[str]] = [[] for _ in groups]
    for name, index in named:
        parts = name.split('.')
        start = len(section(name).split('.'))
        prefix = next(('.'.join(parts[:k]) for k in range(start, len(parts))
                       if groups_under['.'.join(parts[:k])] == {index}), name)
        if prefix not in labels[index]:
            labels[index].append(prefix)
    out = []
    for found in labels:
        more = len(found) - _MAX_PREFIXES
        shown = found[:_MAX_PREFIXES] if more > 0 else found
        out.append(', '.join(shown) + (f' (+{more} more)' if more > 0 else ''))
    return out


def param_group_rows(model: nn.Module, optimizer: Optimizer) -> List[dict]:
    """One dict per optimizer group: modules, tensors, values and the option columns."""
    groups = optimizer.param_groups
    modules = group_modules(model, [g['params'] for g in groups])
    rows = []
    for index, (group, where) in enumerate(zip(groups, modules)):
        row = dict(group=index, modules=where, tensors=len(group['params']),
                   values=sum(p.numel() for p in group['params']))
        row.update({k: group[k] for k in COLUMNS if k in group})
        rows.append(row)
    return rows


def _cell(value) -> str:
    if isinstance(value, float):
        return f'{value:g}'
    if isinstance(value, tuple):
        return '(' + ', '.join(_cell(v) for v in value) + ')'
    return str(value)


def param_group_table(rows: Sequence[dict]) -> str:
    """A fixed-width text table of :func:`param_group_rows`."""
    keys = ['group', 'modules', 'tensors', 'values',
            *[k for k in COLUMNS if any(k in r for r in rows)]]
    cells = [[k for k in keys]] + [[_cell(r.get(k, '')) for k in keys] for r in rows]
    for row in cells[1:]:
        row[3] = f'{int(row[3]) / 1e6:.2f} M'
    widths = [max(len(row[i]) for row in cells) for i in range(len(keys))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in cells)


def log_param_groups(model: nn.Module, optimizer: Optimizer) -> None:
    """Log the groups of ``optimizer`` as one table and the frozen tensors in one line."""
    rows = param_group_rows(model, optimizer)
    print_log(f'{type(optimizer).__name__}: {len(rows)} parameter groups; '
              f'{frozen_summary(model)}.\n' + param_group_table(rows), logger='current')
