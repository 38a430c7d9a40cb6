"""Grouping a suite's student runs into cohorts (``tools/benchmark.py --cohort``).

Runs (one config and seed each) that agree on everything a cohort shares (the teacher,
the whole train dataloader, the schedule length, the seed: the rules of
:func:`kdbench.apis.cohort_check.config_difference`) train as one cohort; see
docs/cohorts.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, List, Optional, Sequence

from mmengine.config import Config

from kdbench.apis.cohort_check import config_difference

if TYPE_CHECKING:
    from .suite import Run


@dataclass
class Job:
    """One run of a suite with one seed and its config (``Suite.config_of``)."""
    run: 'Run'
    seed: int
    cfg: Config

    @property
    def label(self) -> str:
        return f'{self.run.name} seed {self.seed}'


@dataclass
class Group:
    """Jobs trained as one cohort; ``apart`` says, for each earlier group, the key in
    which the first job differs from a member of it (why it did not join)."""
    jobs: List[Job]
    apart: List[str] = field(default_factory=list)


def group_jobs(jobs: Sequence[Job]) -> List[Group]:
    """The jobs in cohorts, in order: each job joins the first group with whose every
    member it agrees (:func:`~kdbench.apis.cohort_check.config_difference`), else starts a
    new group."""
    groups: List[Group] = []
    for job in jobs:
        reasons = []
        for index, group in enumerate(groups, 1):
            key = _disagreement(job, group)
            if key is None:
                group.jobs.append(job)
                break
            reasons.append(f'cohort {index}: {key}')
        else:
            groups.append(Group([job], reasons))
    return groups


def _disagreement(job: Job, group: Group) -> Optional[str]:
    for member in group.jobs:
        key = config_difference(member.cfg, job.cfg)
        if key is not None:
            return f'{key} differs from {member.label}'
    return None


def describe_groups(groups: Sequence[Group]) -> List[str]:
    """Lines for ``--cohort --dry-run``: each cohort's runs and why it is apart from the
    earlier ones."""
    lines = []
    for index, group in enumerate(groups, 1):
        size = len(group.jobs)
        lines.append(f'cohort {index}: ' + (f'{size} runs' if size > 1 else
                                            '1 run (trained alone)'))
        lines += [f'  {job.label}: {job.run.config}' for job in group.jobs]
        lines += [f'  kept apart from {reason}' for reason in group.apart]
    return lines


def with_own_file(cfg: Config, path: str) -> Config:
    """``cfg`` written to ``path`` and read back: cohort members are named after their
    config files (:func:`~kdbench.apis.cohort_check.member_name`), so members made from
    one file (a grid's settings) need files of their own."""
    cfg.dump(path)
    return Config.fromfile(path)
