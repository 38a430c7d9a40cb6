"""What a cohort saves: N members on the same batches together vs the N runs alone.

    python tools/bench_cohort.py [--tasks cifar voc] [--members 9] [--iters 3]
                                 [--warmup 1] [--threads N] [--smoke] [--out result.json]

Members: the baseline student and one Distiller per registered method (CIFAR resnet32x4 ->
resnet8x4, VOC DeepLabV3+ R101 -> R18; random weights, a random batch of the task's
shape). Prints one line per task, then a Markdown table: the cohort round's and the
separate round's time (median over ``--iters`` interleaved pairs), their ratio, the CPU-time
ratio, each round's extra peak memory and the resident weights and optimizer states; see
kdbench/benchmark/cohort_bench.py for what is timed and measured.
"""
import argparse
import json
import os
import sys

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import torch  # noqa: E402

from kdbench.benchmark import cohort_bench, overhead  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tasks', nargs='+', choices=sorted(overhead.TASKS),
                        default=list(overhead.TASKS))
    parser.add_argument('--members', type=int, default=1 + len(overhead.methods()),
                        help='the baseline and the first N-1 registered methods '
                        '(default: all of them)')
    parser.add_argument('--iters', type=int, default=3, help='timed round pairs per task')
    parser.add_argument('--warmup', type=int, default=1, help='untimed rounds of each first')
    parser.add_argument('--threads', type=int, help="torch intra-op threads (default: "
                        "torch's choice)")
    parser.add_argument('--smoke', action='store_true', help='tiny shapes')
    parser.add_argument('--out', help='write the report as JSON here')
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.members < 1:
        parser.error('--iters and --members must be >= 1, --warmup >= 0')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = cohort_bench.run(args.tasks, args.members, args.iters, args.warmup, args.smoke)
    report['argv'] = sys.argv[1:] if argv is None else list(argv)
    print(f"\n{report['machine']}, torch {report['torch']}, {report['date']}, load average "
          f"{report['load_average_start'][0]:.1f} -> {report['load_average_end'][0]:.1f}; "
          f"peak memory: {report['results'][0]['memory_method']}\n")
    print(cohort_bench.markdown_table(report))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return report


if __name__ == '__main__':
    main()
