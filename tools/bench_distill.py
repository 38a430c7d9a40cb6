"""Overhead of distillation over its parts: teacher forward + student step, per method.

    python tools/bench_distill.py [--tasks cifar voc] [--methods kd at cat_kd tat]
                                  [--variants default inference_mode channels_last ...]
                                  [--repeats 10] [--warmup 2] [--threads N]
                                  [--out result.json]
    python tools/bench_distill.py --smoke [--out result.json]    # tiny shapes, 1 repeat
    python tools/bench_distill.py --profile --tasks voc --methods tat   # where time goes

Prints one line per case, then a Markdown table of the overhead ratio c / (a + b) (median,
quartiles, extremes over interleaved repeats) and the peak memory of each part; see
kdbench/benchmark/overhead.py for what is timed and measured. Exit status 1 when a case
failed (it is in the table and the report; the last line names each), else 0.
"""
import argparse
import json
import os
import sys
from typing import List

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import torch  # noqa: E402

from kdbench.benchmark import overhead  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--tasks', nargs='+', choices=sorted(overhead.TASKS),
                        default=list(overhead.TASKS))
    parser.add_argument('--methods', nargs='+', choices=overhead.methods(),
                        default=list(overhead.methods()))
    parser.add_argument('--variants', nargs='+', choices=sorted(overhead.VARIANTS),
                        default=['default'],
                        help='sets of model.speed switches to time (amp: mixed '
                        'precision); see overhead.VARIANTS')
    parser.add_argument('--repeats', type=int, default=10, help='timed rounds per case')
    parser.add_argument('--warmup', type=int, default=2, help='untimed rounds before them')
    parser.add_argument('--threads', type=int,
                        help='torch intra-op threads (default: torch\'s choice); 1 is least '
                        'disturbed by other processes on a shared machine')
    parser.add_argument('--smoke', action='store_true', help='tiny shapes, one repeat')
    parser.add_argument('--profile', action='store_true',
                        help='print the top operators of one distillation step per case')
    parser.add_argument('--out', help='write the report as JSON here')
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.profile:
        for task in args.tasks:
            for method in args.methods:
                print(overhead.profile(task, method, args.variants[0], args.smoke))
        return {}
    report = overhead.run(args.tasks, args.methods, args.variants, args.repeats, args.warmup,
                          args.smoke)
    report['argv'] = sys.argv[1:] if argv is None else list(argv)
    print(f"\n{report['machine']}, torch {report['torch']}, {report['date']}, load average "
          f"{report['load_average_start'][0]:.1f} -> {report['load_average_end'][0]:.1f}\n")
    print(overhead.markdown_table(report))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    return report


def failed_cases(report: dict) -> List[str]:
    """``'<task>/<method>/<variant>: <reason>'`` of every failed case of a report."""
    return [f"{r['task']}/{r['method']}/{r['variant']}: {r['reason']}"
            for r in report.get('results', []) if r['status'] == 'failed']


if __name__ == '__main__':
    failures = failed_cases(main())
    if failures:
        sys.exit(f'{len(failures)} case(s) failed: ' + '; '.join(failures))
