"""Check every CUDA path of kdbench on this GPU: training steps of every registered method
in fp32 and AMP, the Distiller's speed switches, throughput, overhead ratios, memory,
and the torchrun launchers (docs/gpu.md).

    python tools/gpu_check.py [--out work_dirs/gpu_check] [--tasks cifar voc]
                              [--methods KD AT ...] [--variants ...] [--no-launchers]
    python tools/gpu_check.py --smoke --out DIR     # the same cases on CPU, tiny shapes

Writes DIR/gpu_check.json and DIR/gpu_check.md (also printed); exits 1 when a case or
the launchers failed, 2 without a GPU (unless --smoke).
"""
import argparse
import os
import sys

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import torch  # noqa: E402

from kdbench.benchmark import gpu_check, gpu_report, overhead  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', default='work_dirs/gpu_check', help='output folder')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny shapes, 2 steps per case; runs on CPU (see docs/gpu.md)')
    parser.add_argument('--tasks', nargs='+', choices=sorted(overhead.TASKS),
                        default=list(overhead.TASKS))
    parser.add_argument('--methods', nargs='+', metavar='METHOD',
                        help='registered method names (default: every one)')
    parser.add_argument('--variants', nargs='*', choices=sorted(overhead.VARIANTS),
                        help='Distiller speed switches checked once per task (default: '
                        f'{" ".join(gpu_check.VARIANTS)}; with --smoke '
                        f'{" ".join(gpu_check.SMOKE_VARIANTS)}); none: --variants')
    parser.add_argument('--no-launchers', action='store_true',
                        help='skip tools/dist_train.sh / dist_test.sh / test.py')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print('gpu_check: no CUDA device here; this check is for GPUs. Run '
              '`python tools/gpu_check.py --smoke` for its CPU form.', file=sys.stderr)
        return 2
    unknown = set(args.methods or ()) - set(gpu_check.DISTILL_METHODS.module_dict)
    if unknown:
        print(f'gpu_check: unknown --methods {sorted(unknown)}; registered: '
              f'{sorted(gpu_check.DISTILL_METHODS.module_dict)}', file=sys.stderr)
        return 2
    report = gpu_report.check(args.out, args.smoke, args.tasks, args.methods, args.variants,
                              launchers=not args.no_launchers)
    print('\n' + gpu_report.markdown(report))
    print(f"\nWritten: {os.path.join(args.out, 'gpu_check.json')}, gpu_check.md")
    return 0 if report['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
