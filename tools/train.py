"""Train a task model or a distilled student from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options k=v ...]
                                 [--resume [CKPT|auto]] [--resume-any] [--amp]
                                 [--launcher none|pytorch|slurm] [--seed N]
                                 [--deterministic] [--strict-config] [--trust-checkpoint]
                                 [--vis tensorboard|wandb ...] [--verbose]

``--resume`` continues the work dir's latest checkpoint and stops when there is none;
``--resume CKPT`` continues that file; ``--resume auto`` continues the latest checkpoint
when there is one and starts a new run otherwise (jobs that are requeued). A resumed run
keeps the checkpoint's optimizer and schedule: when the config's differ (or the run is of
another kind), it stops naming each difference; ``--resume-any`` resumes anyway with a
warning (docs/reliability.md). Exit status 1 with a message when inputs are missing or
the resume is refused.

The console shows what is trained (the recipe card's short form), then the iterations;
the environment, the full config and the hook order are in the log file (--verbose
prints them too).
"""
import argparse
import sys
from typing import Optional

from mmengine.config import Config

from kdbench.apis import (PreflightError, enable_amp, enable_vis_backends, preflight_or_exit,
                          resume_checkpoint, train)
from kdbench.apis.cli import apply_seed, config_from_args, tool_parser
from kdbench.hooks.resume_check import ResumeMismatchError, allow_any_resume
from kdbench.utils.distributed import finish_distributed

LATEST = '<latest>'     # bare --resume: the work dir's latest checkpoint, which must exist
AUTO = 'auto'           # --resume auto: the latest checkpoint when there is one


def parse_args() -> argparse.Namespace:
    parser = tool_parser(__doc__, 'where logs and checkpoints go (default '
                         'work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const=LATEST, default=None,
                        metavar='CKPT|auto',
                        help="continue the work dir's latest checkpoint (stops when there is "
                        'none), CKPT, or with "auto" the latest checkpoint when there is one '
                        'and a new run otherwise')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 on a GPU, bfloat16 on CPU')
    parser.add_argument('--seed', type=int, help='random seed (overrides the config)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (slower)')
    parser.add_argument('--vis', action='append', default=[], metavar='BACKEND',
                        help='also log to tensorboard or wandb (repeatable)')
    parser.add_argument('--resume-any', action='store_true',
                        help='resume even when the checkpoint comes from another method, '
                        "task or dataset, or the config's optimizer, schedule or batch "
                        "settings differ (the checkpoint's optimizer/scheduler state wins)")
    return parser.parse_args()


def set_resume(cfg: Config, resume: Optional[str]) -> None:
    """Set ``cfg.resume`` and ``cfg.load_from`` for the ``--resume`` value (see the module
    docstring); exit 1 naming the work dir when bare ``--resume`` finds nothing."""
    if resume is None:
        return
    checkpoint = resume
    if resume in (LATEST, AUTO):
        try:
            checkpoint = resume_checkpoint(cfg.work_dir, required=resume == LATEST)
        except PreflightError as err:
            sys.exit(str(err))
        if checkpoint is None:
            print(f'--resume auto: no checkpoint in {cfg.work_dir}: starting a new run.')
            return
    cfg.resume, cfg.load_from = True, checkpoint


def main() -> None:
    args = parse_args()
    cfg = config_from_args(args)
    set_resume(cfg, args.resume)
    if args.resume_any:
        allow_any_resume(cfg)
    if args.amp:
        enable_amp(cfg)
    enable_vis_backends(cfg, args.vis)
    apply_seed(cfg, args.seed, args.deterministic)
    preflight_or_exit(cfg, 'train', cfg.load_from if cfg.get('resume') else None)
    try:
        train(cfg)
    except ResumeMismatchError as err:
        sys.exit(str(err))
    finish_distributed()


if __name__ == '__main__':
    main()
