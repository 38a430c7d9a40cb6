"""Sweep config keys on the held-out validation split and choose a setting.

    python tools/sweep.py CONFIG --grid KEY=V1,V2,... [--grid ...] [--seeds 0 1 ...]
                          [--cfg-options k=v ...] [--work-dir DIR] [--final] [--cohort]

Checks the grid first (every key exists in the config, every value has the type of the
config's value, two values or more) and stops naming the problem before any training.
Then trains every combination of the grid's values once per seed with
``validation.split=holdout`` (``DIR/<key=v,...>/seed<k>``), chooses the setting with the
highest mean validation metric over seeds (ties: the first in grid order) and writes
``DIR/sweep.csv``, ``DIR/sweep.md`` and ``DIR/sweep.png``. ``--final`` then retrains the
chosen setting on the whole training set (``validation.split=test``, the papers'
protocol) and adds its test metric (rows of kind ``final``). ``--cohort`` trains the
trials that share their data pass (same seed, data and schedule) as one cohort
(docs/cohorts.md). The same command again skips finished trials (docs/sweeps.md).

Exit status 1 when the grid is refused (nothing trained), when a trial failed (after the
others and the tables; ``failure.json`` in its folder) or when no setting could be chosen.
"""
import argparse
import functools
import os
import sys

from mmengine.config import DictAction

from kdbench.apis.quiet import train_cohort_quietly, train_quietly
from kdbench.benchmark.suite import FAILURE_FILE
from kdbench.benchmark.sweep import Sweep
from kdbench.benchmark.sweep_report import by_setting, choose, chosen_text, collect, report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--grid', action='append', default=[], metavar='KEY=V1,V2,...',
                        help='a config key and its values (repeat for more keys)')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0],
                        help='each setting trains once per seed (default: 0)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override keys of every trial, e.g. validation.size=200')
    parser.add_argument('--work-dir', help='default: work_dirs/sweep/<config name>')
    parser.add_argument('--final', action='store_true',
                        help='retrain the chosen setting on the whole training set and '
                        'evaluate it on the test split')
    parser.add_argument('--cohort', action='store_true',
                        help='train the trials that share their data pass as cohorts')
    parser.add_argument('--verbose', action='store_true', help="mmengine's INFO log lines")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    work_dir = args.work_dir or os.path.join(
        'work_dirs', 'sweep', os.path.splitext(os.path.basename(args.config))[0])
    try:
        sweep = Sweep(args.config, args.grid, args.seeds, work_dir, args.cfg_options)
    except (ValueError, FileNotFoundError) as err:       # the grid, config or inputs
        sys.exit(f'Nothing trained: {err}')

    train_fn = functools.partial(train_quietly, verbose=args.verbose)
    cohort_fn = functools.partial(train_cohort_quietly, verbose=args.verbose) \
        if args.cohort else None
    sweep.run(sweep.trials, train_fn, train_cohort_fn=cohort_fn)
    trials = collect(sweep, sweep.trials)
    chosen, why = choose(by_setting(sweep, trials))
    finals = []
    if args.final and chosen is not None:
        sweep.run(sweep.final_trials(chosen.setting), train_fn, train_cohort_fn=cohort_fn)
        finals = collect(sweep, sweep.final_trials(chosen.setting))
    print('\n' + report(sweep, trials, finals, chosen, why), flush=True)
    problems = [f'{r.trial.label}: ' + (os.path.join(r.trial.work_dir, FAILURE_FILE)
                                        if r.status == 'failed' else r.status)
                for r in [*trials, *finals] if r.status != 'done']
    if problems:
        sys.exit(f'{len(problems)} trial(s) did not finish: ' + '; '.join(problems))
    if chosen is None:
        sys.exit(f'No setting chosen: {why}')
    print(f'Chosen: {chosen_text(sweep, chosen)} (tables: {work_dir}/sweep.md, sweep.csv, '
          'sweep.png)')


if __name__ == '__main__':
    main()
