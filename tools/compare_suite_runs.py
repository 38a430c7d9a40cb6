"""Whether two work dirs of one suite hold the same results and checkpoints.

    python tools/compare_suite_runs.py WORK_DIR WORK_DIR

E.g. ``tools/benchmark.py SUITE --work-dir A`` against ``... --cohort --work-dir B``:
compares ``results.csv`` row by row (work dirs relative to each suite dir) and every
checkpoint file's weights, optimizer, scheduler and generator states bitwise
(kdbench/benchmark/compare.py). Prints each difference; exit status 1 if there is one.
"""
import argparse
import os
import sys

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

from kdbench.benchmark.compare import checkpoints, compare_suite_dirs  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('first', help="a suite's work dir (holding results.csv)")
    parser.add_argument('second', help='another work dir of the same suite')
    args = parser.parse_args(argv)
    found = compare_suite_dirs(args.first, args.second)
    for line in found:
        print(line)
    if found:
        print(f'{len(found)} difference(s) between {args.first} and {args.second}')
        return 1
    print(f'identical: results.csv rows and {len(checkpoints(args.first))} checkpoints '
          f'({args.first}, {args.second})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
