"""Logging backends as one-flag options (``tools/train.py --vis tensorboard --vis wandb``):
mmengine's visualizer ``vis_backends``, which ``--cfg-options`` cannot set (a list of
dicts)."""
from __future__ import annotations

import importlib.util
from typing import Dict, List, Sequence, Tuple

from mmengine.config import Config

#: ``--vis`` name -> (mmengine backend type, package it imports, pip extra of kdbench).
VIS_BACKENDS: Dict[str, Tuple[str, str, str]] = {
    'local': ('LocalVisBackend', '', ''),
    'tensorboard': ('TensorboardVisBackend', 'tensorboard', 'tensorboard'),
    'wandb': ('WandbVisBackend', 'wandb', 'wandb'),
}


def vis_backends_cfg(names: Sequence[str]) -> List[dict]:
    """Backend configs for ``names`` (duplicates dropped), after mmengine's default
    ``LocalVisBackend`` (scalars.json in the log folder), which stays."""
    unknown = [n for n in names if n not in VIS_BACKENDS]
    if unknown:
        raise ValueError(f'--vis {unknown[0]}: unknown backend; choose from '
                         f'{sorted(VIS_BACKENDS)}.')
    ordered = ['local'] + [n for n in dict.fromkeys(names) if n != 'local']
    return [dict(type=VIS_BACKENDS[n][0]) for n in ordered]


def enable_vis_backends(cfg: Config, names: Sequence[str]) -> None:
    """Log to the backends ``names`` besides the config's own; a backend whose package is
    missing stops here (not at the first log line) with the install command."""
    if not names:
        return
    for name in dict.fromkeys(names):
        _type, package, extra = VIS_BACKENDS.get(name, ('', '', ''))
        if package and importlib.util.find_spec(package) is None:
            raise ImportError(f"--vis {name} needs the '{package}' package: "
                              f"pip install '{package}' (or pip install -e '.[{extra}]').")
    visualizer = dict(cfg.get('visualizer') or dict(type='Visualizer', name='visualizer'))
    have = list(visualizer.get('vis_backends') or [])
    kinds = {b['type'] for b in have}
    visualizer['vis_backends'] = have + [b for b in vis_backends_cfg(names)
                                         if b['type'] not in kinds]
    cfg.visualizer = visualizer
