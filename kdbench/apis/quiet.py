"""Training with one progress line per epoch instead of mmengine's log (suites, sweeps)."""
from __future__ import annotations

from typing import List, Optional, Sequence

from mmengine.config import Config

from .cohort import train_cohort
from .experiment import train


def quiet(cfg: Config, name: str, verbose: bool = False) -> Config:
    """``cfg`` printing one ``ProgressHook`` line per epoch under ``name``; mmengine's
    INFO lines go to the work dir's log only, unless ``verbose``."""
    if not verbose:
        cfg.log_level = 'WARNING'
    cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [dict(type='ProgressHook',
                                                                 name=name)]
    return cfg


def train_quietly(cfg: Config, name: str, verbose: bool = False) -> None:
    """Train ``cfg`` alone with one progress line per epoch."""
    train(quiet(cfg, name, verbose))


def train_cohort_quietly(cfgs: Sequence[Config], names: Sequence[str],
                         verbose: bool = False) -> List[Optional[BaseException]]:
    """Train ``cfgs`` as one cohort, quietly; each member's error (``None``: trained)."""
    members = train_cohort([quiet(cfg, name, verbose) for cfg, name in zip(cfgs, names)])
    return [member.error for member in members]
