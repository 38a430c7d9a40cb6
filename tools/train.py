"""Train a task model or a distilled student from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options k=v ...] [--resume [CKPT]]
                                 [--amp] [--launcher none|pytorch|slurm] [--seed N]
                                 [--deterministic] [--strict-config] [--resume-any]
                                 [--vis tensorboard|wandb ...] [--verbose]

The console shows what is trained (the recipe card's short form), then the iterations;
the environment, the full config and the hook order are in the log file (--verbose
prints them too).
"""
import argparse

from kdbench.apis import enable_amp, enable_vis_backends, preflight_or_exit, train
from kdbench.apis.cli import config_from_args, tool_parser
from kdbench.utils.distributed import finish_distributed


def parse_args() -> argparse.Namespace:
    parser = tool_parser(__doc__, 'where logs and checkpoints go (default '
                         'work_dirs/<config name>)')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume from CKPT, or from the work dir\'s latest checkpoint')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 on a GPU, bfloat16 on CPU')
    parser.add_argument('--seed', type=int, help='random seed (overrides the config)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (slower)')
    parser.add_argument('--vis', action='append', default=[], metavar='BACKEND',
                        help='also log to tensorboard or wandb (repeatable)')
    parser.add_argument('--resume-any', action='store_true',
                        help='resume from a checkpoint of another method, task or dataset')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = config_from_args(args)
    if args.resume is not None:
        cfg.resume = True
        cfg.load_from = None if args.resume == 'auto' else args.resume
    if args.resume_any:
        cfg.default_hooks.pop('resume_check', None)
    if args.amp:
        enable_amp(cfg)
    enable_vis_backends(cfg, args.vis)
    if args.seed is not None or args.deterministic:
        cfg.randomness = dict(cfg.get('randomness', {}), deterministic=args.deterministic)
        if args.seed is not None:
            cfg.randomness['seed'] = args.seed
    preflight_or_exit(cfg, 'train', cfg.load_from if cfg.get('resume') else None)
    train(cfg)
    finish_distributed()


if __name__ == '__main__':
    main()
