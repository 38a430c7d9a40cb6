"""Run a benchmark suite and compare with the papers' numbers.

    python tools/benchmark.py SUITE [SUITE ...] [--work-dir DIR] [--cfg-options k=v ...]
    python tools/benchmark.py SUITE --commands [--gpus 8] [--partition P]   # cluster jobs
    python tools/benchmark.py SUITE --collect                               # tables only
    python tools/benchmark.py SUITE --cohort [--dry-run]      # students in cohorts
    python tools/benchmark.py SUITE --launcher slurm|local [--partition P] [--gpus N]
        [--timeout-min M] [--max-parallel J] [--slurm KEY=VALUE ...] [--retry-failed]
        [--cohort]

Trains every unfinished run of SUITE in this process (finished runs are skipped, a failing
run is recorded and the suite goes on), then writes ``results.csv``, ``results.md`` (ours
best/last epoch, mean ± std over seeds, next to the paper's value and source) and PNG
plots to the work dir (default ``work_dirs/benchmark/<suite name>``). ``--commands``
prints one torchrun (or srun) line per unfinished run instead; run them, then
``--collect``. A suite file holding ``suites = [...]`` (other suite files, relative to it)
runs each of them in turn, in ``<work dir>/<suite name>``; with ``--parallel-suites N``,
up to N of them at once, each in a process of its own with ``cores / N`` torch threads
(e.g. ``configs/suites/demo.py --cohort --parallel-suites 2``: its two suites on two cores).

``--cohort`` trains the teachers first, then each group of unfinished student runs that
share the teacher, the train dataloader, the schedule length and the seed as one cohort
(docs/cohorts.md: one pass over the data, one teacher forward per batch), with the same
work dirs, checkpoints and tables as without it; ``--cohort --dry-run`` prints the groups
and, for each group, the key that kept it apart from the earlier ones, and trains nothing.

A pass that trains writes ``suite_time.json`` to each suite's work dir and prints it: CPU
time (user + sys of this process and every process it started) and wall time.

``--launcher slurm|local`` submits every unfinished run as a submitit job (teachers
first, students once their teacher finished; job folders under ``<work dir>/submitit``),
prints a status table until the suite is done and writes the tables as runs end; started
again, it re-attaches to its jobs. A job at its time limit or preempted is requeued and
resumes from its last checkpoint; failed runs are resubmitted with ``--retry-failed``
(docs/benchmarks.md, kdbench/benchmark/launch.py). With ``--cohort`` each cohort of
student runs is one job (``tools/train_cohort.py``; a retry resubmits the failed members,
as a cohort when several).

Exit status 1 when a run of the suites failed (after the other runs and the tables; the
last line names each failed run's ``failure.json``), else 0.
"""
import argparse
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import List, Tuple

from mmengine.config import Config, DictAction

from kdbench.apis.quiet import train_cohort_quietly, train_quietly
from kdbench.benchmark import Suite, plot_methods_vs_baseline, plot_training_curves
from kdbench.benchmark.cohorts import describe_groups
from kdbench.benchmark.measure import CpuClock, cpu_seconds_so_far, describe_cpu
from kdbench.benchmark.launch import LAUNCHERS, LaunchOptions, SuiteLauncher
from kdbench.benchmark.suite import FAILURE_FILE


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('suites', nargs='+', metavar='SUITE',
                        help='suite file(s), e.g. configs/suites/cifar100.py')
    parser.add_argument('--work-dir', help='default: work_dirs/benchmark/<suite name>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override keys of every run, e.g. train_cfg.max_epochs=1')
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument('--commands', action='store_true',
                      help='print cluster commands for the unfinished runs')
    mode.add_argument('--collect', action='store_true', help='only collect and report')
    parser.add_argument('--cohort', action='store_true',
                        help='train the student runs that share teacher, data, schedule '
                        'length and seed as cohorts (docs/cohorts.md)')
    parser.add_argument('--dry-run', action='store_true',
                        help='with --cohort: print the cohorts and why runs were kept apart')
    parser.add_argument('--gpus', type=int, help='GPUs per run (--commands: default 8; '
                        '--launcher: default 1, 0 for local jobs on a machine without GPUs)')
    parser.add_argument('--partition', help='slurm partition (--commands: srun lines; '
                        '--launcher slurm)')
    parser.add_argument('--launcher', choices=LAUNCHERS,
                        help='submit the unfinished runs as submitit jobs and track them')
    parser.add_argument('--timeout-min', type=int,
                        help='--launcher: time limit per job in minutes (default 1440; a job '
                        'that reaches it is requeued and resumes)')
    parser.add_argument('--max-parallel', type=int,
                        help='--launcher: jobs at once (default: 1 local, no limit slurm)')
    parser.add_argument('--slurm', nargs='+', action=DictAction, default={},
                        metavar='KEY=VALUE', help='--launcher slurm: extra #SBATCH parameters '
                        "(over the suite's slurm dict), e.g. account=lab mem=64G")
    parser.add_argument('--retry-failed', action='store_true',
                        help='--launcher: resubmit the runs that failed')
    parser.add_argument('--parallel-suites', type=int, default=1, metavar='N',
                        help='train up to N of the given or composite suites at once, each '
                        'in a process of its own with cores/N torch threads')
    parser.add_argument('--verbose', action='store_true', help="mmengine's INFO log lines")
    args = parser.parse_args()
    if args.dry_run and not args.cohort:
        parser.error('--dry-run prints the cohorts of --cohort: add --cohort.')
    if args.cohort and (args.commands or args.collect):
        parser.error('--cohort trains in this process: leave out --commands/--collect.')
    if args.launcher and (args.commands or args.collect):
        parser.error('--launcher submits and tracks jobs: leave out --commands/--collect.')
    launch_only = [f'--{k.replace("_", "-")}' for k in (
        'timeout_min', 'max_parallel', 'retry_failed') if getattr(args, k)]
    if launch_only and not args.launcher:
        parser.error(f'{", ".join(launch_only)} need --launcher slurm|local.')
    if args.slurm and args.launcher != 'slurm':
        parser.error('--slurm KEY=VALUE sets #SBATCH parameters: add --launcher slurm.')
    if args.parallel_suites < 1:
        parser.error('--parallel-suites must be at least 1.')
    if args.parallel_suites > 1 and (args.launcher or args.commands or args.dry_run):
        parser.error('--parallel-suites trains suites side by side here: leave out '
                     '--launcher/--commands/--dry-run.')
    if any(value is not None and value < low for value, low in (
            (args.max_parallel, 1), (args.timeout_min, 1), (args.gpus, 0))):
        parser.error('--max-parallel and --timeout-min must be at least 1, --gpus at least 0.')
    return args


def launch_options(suite: Suite, args: argparse.Namespace) -> LaunchOptions:
    """``--launcher`` and its options; a local job gets no GPU on a machine without."""
    import torch
    gpus = args.gpus if args.gpus is not None else int(
        args.launcher == 'slurm' or torch.cuda.is_available())
    max_parallel = args.max_parallel or (1 if args.launcher == 'local' else None)
    return LaunchOptions(args.launcher, gpus, args.partition, args.timeout_min or 24 * 60,
                         max_parallel, dict(suite.slurm, **args.slurm), args.retry_failed,
                         args.cohort)


def expand(path: str, work_dir: str):
    """``(suite file, work dir)`` pairs: a composite suite's members, or the suite itself."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Suite file '{path}' not found.")
    members = Config.fromfile(path).get('suites')
    if not members:
        return [(path, work_dir)]
    here = os.path.dirname(path)
    return [pair for member in members for pair in expand(
        os.path.join(here, member), os.path.join(work_dir, _name(member)))]


def _name(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def failed_runs(rows: List[dict]) -> List[str]:
    """``'<run> seed <n>: <work dir>/failure.json'`` of every failed run of collected rows."""
    return [f"{row['name']} seed {seed['seed']}: {os.path.join(seed['work_dir'], FAILURE_FILE)}"
            for row in rows for seed in row['seeds'] if seed['status'] == 'failed']


def run(path: str, work_dir: str, args: argparse.Namespace) -> Tuple[str, List[str]]:
    """Run (or list, or collect) one suite; returns its report for the summary and its
    failed runs (:func:`failed_runs`)."""
    suite = Suite(path, work_dir, args.cfg_options)
    if args.commands:
        gpus = 8 if args.gpus is None else args.gpus
        print('\n'.join(suite.commands(gpus, args.partition)))
        return '', []
    if args.dry_run:
        teachers = [f'  {run.name} seed {seed}: {run.config}' for run in suite.runs
                    if run.role == 'teacher' for seed in run.seeds
                    if suite.status(run, seed) != 'done']
        lines = ['teachers first, alone:', *teachers] if teachers else []
        print('\n'.join([f'{path}:', *lines, *describe_groups(suite.cohort_groups())]))
        return '', []
    clock, trained = CpuClock(), suite.unfinished()
    if args.launcher:
        SuiteLauncher(suite, launch_options(suite, args)).run()
    elif not args.collect:
        suite.run_local(lambda cfg, name: train_quietly(cfg, name, args.verbose),
                        train_cohort_fn=(lambda cfgs, names: train_cohort_quietly(
                            cfgs, names, args.verbose)) if args.cohort else None)
    rows = suite.collect()
    table = suite.report(rows)
    plot_methods_vs_baseline(rows, os.path.join(work_dir, 'methods.png'), suite.metric)
    for row in rows:
        for seed in row['seeds']:
            if seed['status'] == 'done':
                plot_training_curves(seed['work_dir'],
                                     os.path.join(seed['work_dir'], 'curves.png'))
    timing = '' if args.collect else \
        '\n' + suite.record_time(clock.elapsed(), args.cohort, trained)
    return (f'{path}: {suite.metric}\n{table}\n(results: {work_dir}/results.md, results.csv,'
            f' methods.png; curves.png in each run dir){timing}'), failed_runs(rows)


def _run_with_threads(path: str, work_dir: str, args: argparse.Namespace,
                      threads: int) -> Tuple[str, List[str]]:
    """:func:`run` in a worker process of ``--parallel-suites``, with ``threads`` torch
    threads."""
    import torch
    torch.set_num_threads(threads)
    multiprocessing.set_start_method(None, force=True)   # loader workers: as the config says
    return run(path, work_dir, args)


def run_all(jobs: List[Tuple[str, str]], args: argparse.Namespace) -> List[Tuple[str, List[str]]]:
    """:func:`run` of every ``(suite, work dir)``: in turn, or ``--parallel-suites`` at
    once in worker processes (spawned: no thread state is inherited), in order."""
    if args.parallel_suites == 1 or len(jobs) == 1:
        return [run(path, work_dir, args) for path, work_dir in jobs]
    threads = max(1, (os.cpu_count() or 1) // min(args.parallel_suites, len(jobs)))
    with ProcessPoolExecutor(args.parallel_suites,
                             mp_context=multiprocessing.get_context('spawn')) as pool:
        futures = [pool.submit(_run_with_threads, path, work_dir, args, threads)
                   for path, work_dir in jobs]
        return [future.result() for future in futures]


def main() -> None:
    args = parse_args()
    jobs = [pair for path in args.suites for pair in expand(
        path, args.work_dir if args.work_dir and len(args.suites) == 1 else
        os.path.join(args.work_dir or os.path.join('work_dirs', 'benchmark'), _name(path)))]
    reports, failed = [], []
    for report, failures in run_all(jobs, args):
        reports.append(report)
        failed += failures
    if not (args.commands or args.dry_run):
        total = '' if args.collect else (f'\n\nThis command: {describe_cpu(*cpu_seconds_so_far())}'
                                         ' of it and every process it started')
        print('\n\n' + '\n\n'.join(reports) + total, flush=True)
    if failed:
        sys.exit(f'{len(failed)} run(s) failed: ' + '; '.join(failed))


if __name__ == '__main__':
    main()
