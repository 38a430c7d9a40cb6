"""The embedded demo: teacher, baseline student, KD, AT and CAT-KD students on data that ships
with scikit-learn; prints a results table. No download, no GPU.

    python tools/demo.py [--suite configs/demo/suite.py] [--work-dir work_dirs/demo]
"""
import argparse

from kdbench.apis.suite import run_suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--suite', default='configs/demo/suite.py')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()
    run_suite(args.suite, args.work_dir)


if __name__ == '__main__':
    main()
