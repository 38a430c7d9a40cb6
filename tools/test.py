"""Evaluate a checkpoint (top-1/top-5 or mIoU, as the config's evaluator says).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...]
                                           [--launcher none|pytorch|slurm] [--strict-config]
                                           [--out FILE.json|.pkl] [--show-dir DIR]
                                           [--tta [--tta-scales S ...]] [--verbose]
                                           [--trust-checkpoint]

CONFIG may be the task model's config or a distillation config: a distilled student is
evaluated on its own, without building or loading its teacher.
"""
import argparse
import json

from mmengine.dist import get_rank

from kdbench.apis import add_sample_outputs, enable_tta, evaluate, preflight_or_exit
from kdbench.apis.cli import config_from_args, tool_parser
from kdbench.utils.distributed import finish_distributed


def parse_args() -> argparse.Namespace:
    parser = tool_parser(__doc__, 'where the evaluation log goes')
    parser.add_argument('checkpoint', help='checkpoint of the task model or of a Distiller')
    parser.add_argument('--out', help='per-sample records (.json or .pkl): top-k classes, or '
                        'per-image IoU and pixel accuracy')
    parser.add_argument('--show-dir', help='pictures: image | ground truth | prediction per '
                        'image (segmentation), grids with top-k labels (classification)')
    parser.add_argument('--tta', action='store_true', help='segmentation: flip + multi-scale '
                        'test (scales 0.5 .. 1.75), averaged softmax')
    parser.add_argument('--tta-scales', nargs='+', type=float, metavar='S',
                        help='the scales of --tta')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = config_from_args(args)
    preflight_or_exit(cfg, 'test', args.checkpoint)
    add_sample_outputs(cfg, args.out, args.show_dir)
    if args.tta:
        enable_tta(cfg, args.tta_scales)
    metrics = evaluate(cfg, args.checkpoint)
    if get_rank() == 0:
        print(json.dumps(metrics, indent=2))
    finish_distributed()


if __name__ == '__main__':
    main()
