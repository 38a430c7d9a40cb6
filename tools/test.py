"""Evaluate a checkpoint (top-1/top-5 or mIoU, as the config's evaluator says).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
                                           [--launcher none|pytorch|slurm] [--strict-config]

CONFIG may be the task model's config or a distillation config: a distilled student is
evaluated on its own, without building or loading its teacher.
"""
import argparse
import json

from mmengine.config import DictAction

from kdbench.apis import evaluate, load_config, preflight_or_exit


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint of the task model or of a Distiller')
    parser.add_argument('--work-dir', help='where the evaluation log goes')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--strict-config', action='store_true',
                        help='refuse --cfg-options top-level keys that nothing reads')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher,
                      args.strict_config)
    preflight_or_exit(cfg, 'test', args.checkpoint)
    metrics = evaluate(cfg, args.checkpoint)
    print(json.dumps(metrics, indent=2))


if __name__ == '__main__':
    main()
