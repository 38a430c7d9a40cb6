"""The command-line options tools/train.py and tools/test.py share."""
from __future__ import annotations

import argparse
from typing import Optional

from mmengine.config import Config, DictAction

from .config import load_config


def tool_parser(doc: str, work_dir_help: str) -> argparse.ArgumentParser:
    """A parser with the config, ``--work-dir``, ``--cfg-options``, ``--launcher``,
    ``--strict-config``, ``--trust-checkpoint``, ``--verbose`` and torchrun's
    ``--local-rank``; the tool adds its own options."""
    parser = argparse.ArgumentParser(description=doc.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. model.methods.kd.temperature=2')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--strict-config', action='store_true',
                        help='refuse --cfg-options top-level keys that nothing reads')
    add_trust_option(parser)
    parser.add_argument('--verbose', action='store_true',
                        help='also print the environment, the full config and the hook order '
                        '(always in the log file)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    return parser


def add_trust_option(parser: argparse.ArgumentParser) -> None:
    """``--trust-checkpoint``: consent to load checkpoint files that need more than a
    weights-only load (docs/weights.md)."""
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='load checkpoints that hold Python objects besides weights '
                        '(unpickling runs their code: only files you trust); same as '
                        'trust_checkpoint = True in the config')


def config_from_args(args: argparse.Namespace) -> Config:
    """The config of a :func:`tool_parser` command line, overrides, ``--trust-checkpoint``
    and ``--verbose`` (``verbose_log``, see :class:`~kdbench.apis.runner.KDRunner`) applied."""
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher,
                      args.strict_config)
    if args.trust_checkpoint:
        cfg.trust_checkpoint = True
    if args.verbose:
        cfg.verbose_log = True
    return cfg


def apply_seed(cfg: Config, seed: Optional[int], deterministic: bool) -> None:
    """``--seed N`` and ``--deterministic``: set ``cfg.randomness`` (nothing when neither
    is given)."""
    if seed is not None or deterministic:
        cfg.randomness = dict(cfg.get('randomness', {}), deterministic=deterministic)
        if seed is not None:
            cfg.randomness['seed'] = seed
