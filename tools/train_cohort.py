"""Train several configs with the same teacher and data as one cohort (docs/cohorts.md).

    python tools/train_cohort.py CONFIG [CONFIG ...] [--work-dir-root DIR]
                                 [--cfg-options k=v ...] [--seed N] [--deterministic]
                                 [--resume [auto]] [--strict-config] [--trust-checkpoint]
                                 [--launcher none|pytorch|slurm]
    bash tools/dist_run.sh NPROC train_cohort.py CONFIG [CONFIG ...] [options]   # torchrun

Every member ends with the checkpoints, logs and metrics of its run alone with
tools/train.py (same seed; bitwise on CPU with --deterministic), in its own work dir:
DIR/<config name> with --work-dir-root, else the config's (work_dirs/<config name>).
The data is loaded once per batch and the teacher runs once per batch for all members.
``--resume`` continues every member's latest checkpoint (each must have one);
``--resume auto`` (cohort jobs that are requeued) continues those that have one, starts
the others anew and leaves out the finished ones (kdbench/apis/cohort_resume.py).
Exit status 1 when the cohort is refused or a member failed (the others still train).
Under torchrun or slurm each member's model gets its own DDP (docs/cohorts.md,
"Several processes"); rank 0 prints the members' states.
"""
import argparse
import os
import sys
from typing import List

from mmengine.config import Config, DictAction
from mmengine.dist import get_rank

from kdbench.apis import PreflightError, load_config, preflight_or_exit, resume_checkpoint
from kdbench.apis.cli import add_trust_option, apply_seed
from kdbench.apis.cohort import train_cohort
from kdbench.apis.cohort_check import member_name
from kdbench.apis.cohort_resume import auto_resume
from kdbench.apis.cohort_runner import CohortError
from kdbench.apis.validation import training_config
from kdbench.utils.distributed import finish_distributed

LATEST = 'latest'       # bare --resume: every member's latest checkpoint, which must exist
AUTO = 'auto'           # --resume auto: see the module docstring


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='member config files')
    parser.add_argument('--work-dir-root', help='each member works in DIR/<config name> '
                        '(default: the config\'s work dir, work_dirs/<config name>)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys of every member')
    parser.add_argument('--seed', type=int, help='random seed (overrides the configs)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms (slower)')
    parser.add_argument('--resume', nargs='?', const=LATEST, choices=(LATEST, AUTO),
                        metavar='auto', help="resume every member from its work dir's latest "
                        'checkpoint (each must have one); "auto": those that have one, the '
                        'others start anew, finished ones are left out')
    parser.add_argument('--strict-config', action='store_true',
                        help='refuse --cfg-options top-level keys that nothing reads')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none',
                        help='several processes: torchrun (tools/dist_run.sh) or slurm')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
    add_trust_option(parser)
    return parser.parse_args(argv)


def member_configs(args: argparse.Namespace) -> List[Config]:
    """The members' configs: overrides, work dirs, seed, determinism, consent and bare
    ``--resume`` applied (every member from its work dir's latest checkpoint, which must
    exist)."""
    cfgs = []
    for path in args.configs:
        name = os.path.splitext(os.path.basename(path))[0]
        work_dir = os.path.join(args.work_dir_root, name) if args.work_dir_root else None
        cfg = load_config(path, args.cfg_options, work_dir, args.launcher,
                          strict=args.strict_config)
        try:
            training_config(cfg)        # a bad `validation` key stops here, before any build
        except ValueError as err:
            sys.exit(f'{path}: {err}')
        apply_seed(cfg, args.seed, args.deterministic)
        if args.trust_checkpoint:
            cfg.trust_checkpoint = True
        if args.resume == LATEST:
            try:
                cfg.resume, cfg.load_from = True, resume_checkpoint(cfg.work_dir, True)
            except PreflightError as err:
                sys.exit(str(err))
        cfgs.append(cfg)
    return cfgs


def main(argv=None) -> int:
    args = parse_args(argv)
    cfgs = member_configs(args)
    try:
        if args.resume == AUTO:
            cfgs, finished = auto_resume(cfgs)
            for cfg in finished if get_rank() == 0 else ():
                print(f'{member_name(cfg)}: finished, skipped ({cfg.work_dir})')
        for cfg in cfgs:
            preflight_or_exit(cfg, 'train')
        members = train_cohort(cfgs) if cfgs else []
    except CohortError as error:
        print(f'train_cohort: {error}', file=sys.stderr)
        return 1
    failed = [m for m in members if not m.ok]
    for member in members if get_rank() == 0 else ():
        state = f'FAILED: {type(member.error).__name__}: {member.error}' if member.error \
            else 'trained'
        print(f'{member_name(member.cfg)}: {state} ({member.cfg.work_dir})')
    return 1 if failed else 0


if __name__ == '__main__':
    status = main()
    finish_distributed()        # after main() dropped the members' runners
    sys.exit(status)
