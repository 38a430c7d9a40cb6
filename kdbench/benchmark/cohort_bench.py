"""What a cohort saves per batch: N members trained together against the N runs alone.

For a task of :data:`kdbench.benchmark.overhead.TASKS` (CIFAR resnet32x4 -> resnet8x4,
VOC DeepLabV3+ R101 -> R18), the members are the baseline (a plain training step of the
student) and one Distiller per registered method with a config for the pair (random
teacher weights from one temporary checkpoint, a random batch of the task's shape:
:mod:`kdbench.testing`); the Distillers read their teacher's tensors from one
:class:`~kdbench.distill.shared_teacher.SharedTeacher`. Two rounds are timed in one
process, interleaved (their order alternating), after a warm-up round of each:

* ``separate``: every member's step as its run alone does it: for a Distiller the
  teacher's forward (the shared result is dropped before each member, so the teacher runs
  once per Distiller) then its training step; for the baseline its training step;
* ``cohort``: what :class:`kdbench.apis.cohort.Cohort` does per batch: every member's step
  on its own copy of the batch, the teacher running once (with the union of the members'
  taps; taps only record tensors).

Each round pair gives one ratio ``cohort / separate``. Data loading and start-up are not
timed (the batch is in memory): a real cohort also loads and augments each batch once.
"""
from __future__ import annotations

import copy
import functools
import gc
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from kdbench.distill.shared_teacher import SharedTeacher
from kdbench.paths import config_path
from kdbench.testing import TeacherCheckpoints, build_distiller_case

from .measure import mib, peak_extra_bytes, timed
from .overhead import TASKS, _quantiles, machine, methods, task_shape

ROUNDS = ('cohort', 'separate')


@dataclass
class Member:
    """A member: ``name`` (``baseline`` or a method's config prefix), its model (a
    Distiller, or the baseline's task model) and optimizer wrapper."""
    name: str
    model: torch.nn.Module
    optim: OptimWrapper

    def step(self, data: dict) -> None:
        self.model.train_step(data, self.optim)


class CohortBench:
    """The members of one task, sharing one teacher, and the two rounds."""

    def __init__(self, task: str, members: int, checkpoints: TeacherCheckpoints,
                 smoke: bool = False, device: Optional[str] = None):
        device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
        spec = TASKS[task]
        self.shape = task_shape(spec, smoke, device)
        self.cuda = device.startswith('cuda')
        chosen = [m for m in methods()
                  if os.path.isfile(config_path(spec.config.format(method=m)))]
        if members < 1:
            raise ValueError(f'--members must be >= 1, got {members}.')
        first = build_distiller_case(spec.config.format(method=chosen[0]), self.shape,
                                     checkpoints, device=device)
        # The baseline: the student of a Distiller case, trained alone (its teacher freed).
        self.members = [Member('baseline', first.distiller.student, first.student_optim)]
        self.data = first.data
        del first
        self.teacher: Optional[SharedTeacher] = None
        for method in chosen[:members - 1]:
            case = build_distiller_case(spec.config.format(method=method), self.shape,
                                        checkpoints, device=device)
            if self.teacher is None:
                self.teacher = SharedTeacher(case.distiller)
            else:
                self.teacher.add(case.distiller, method)
            self.members.append(Member(method, case.distiller, case.distill_optim))
            del case
            gc.collect()

    def cohort_round(self) -> None:
        """Every member on its own copy of the batch; the teacher runs once."""
        for index, member in enumerate(self.members):
            last = index == len(self.members) - 1
            member.step(self.data if last else copy.deepcopy(self.data))
        self._release()

    def separate_round(self) -> None:
        """Every member as its run alone: the teacher runs again for each Distiller."""
        for member in self.members:
            self._release()
            member.step(self.data)
        self._release()

    def _release(self) -> None:
        if self.teacher is not None:
            self.teacher.release()

    def rounds(self) -> Dict[str, Callable[[], None]]:
        return dict(cohort=self.cohort_round, separate=self.separate_round)

    def resident_bytes(self) -> Dict[str, int]:
        """Bytes of parameters, buffers and optimizer state: ``teacher``, ``members``
        (all members' own, teacher excluded) and ``largest_member``."""
        teacher = self.teacher.teacher if self.teacher is not None else None
        shared = set(map(id, _tensors(teacher))) if teacher is not None else set()
        own = [sum(t.numel() * t.element_size() for t in
                   [*_tensors(m.model), *_optimizer_tensors(m.optim)] if id(t) not in shared)
               for m in self.members]
        return dict(teacher=sum(t.numel() * t.element_size() for t in _tensors(teacher))
                    if teacher is not None else 0,
                    members=sum(own), largest_member=max(own))


def _tensors(module: Optional[torch.nn.Module]) -> List[torch.Tensor]:
    if module is None:
        return []
    return [*module.parameters(), *module.buffers()]


def _optimizer_tensors(optim: OptimWrapper) -> List[torch.Tensor]:
    return [v for state in optim.optimizer.state.values() for v in state.values()
            if isinstance(v, torch.Tensor)]


def run_task(task: str, members: int, iters: int, warmup: int,
             checkpoints: TeacherCheckpoints, smoke: bool = False) -> dict:
    """Build the task's members, time ``iters`` interleaved round pairs after ``warmup``
    of each, and measure each round's extra peak memory; returns the task's result."""
    bench = CohortBench(task, members, checkpoints, smoke)
    rounds = bench.rounds()
    for _ in range(warmup):
        for step in rounds.values():
            step()
    wall: Dict[str, List[float]] = {name: [] for name in ROUNDS}
    cpu: Dict[str, List[float]] = {name: [] for name in ROUNDS}
    for index in range(iters):
        for name in (ROUNDS if index % 2 == 0 else ROUNDS[::-1]):
            seconds, cpu_seconds = timed(rounds[name], bench.cuda)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    peak, method = {}, ''
    for name, step in rounds.items():
        peak[name], method = peak_extra_bytes(step, bench.cuda)
    ratios = [c / s for c, s in zip(wall['cohort'], wall['separate'])]
    cpu_ratios = [c / s for c, s in zip(cpu['cohort'], cpu['separate'])]
    return dict(task=task, members=[m.name for m in bench.members], batch=bench.shape.batch,
                input_size=bench.shape.size, iters=iters, warmup=warmup, times_s=wall,
                cpu_times_s=cpu, median_s={k: statistics.median(v) for k, v in wall.items()},
                ratio=_quantiles(ratios), cpu_ratio=_quantiles(cpu_ratios),
                teacher_forwards=bench.teacher.forwards if bench.teacher else 0,
                peak_step_bytes=peak, memory_method=method,
                resident_bytes=bench.resident_bytes())


def run(tasks: Sequence[str], members: int, iters: int, warmup: int = 1,
        smoke: bool = False,
        log: Callable[[str], None] = functools.partial(print, flush=True)) -> dict:
    """Every task in one process; returns the JSON-ready report."""
    load_start = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp, \
            DefaultScope.overwrite_default_scope('kdbench'):
        checkpoints = TeacherCheckpoints(tmp)
        for task in tasks:
            results.append(run_task(task, members, iters, warmup, checkpoints, smoke))
            log(summary_line(results[-1]))
            gc.collect()
    return dict(date=time.strftime('%Y-%m-%d %H:%M'), machine=machine(),
                torch=torch.__version__, threads=torch.get_num_threads(), smoke=smoke,
                load_average_start=load_start, load_average_end=os.getloadavg(),
                results=results)


def summary_line(r: dict) -> str:
    m, q = r['median_s'], r['ratio']
    return (f"{r['task']} ({len(r['members'])} members): cohort {m['cohort']:.3f} s, "
            f"separate {m['separate']:.3f} s, ratio {q['median']:.3f} "
            f"[IQR {q['q1']:.3f}-{q['q3']:.3f}]")


def markdown_table(report: dict) -> str:
    """One row per task: times, ratios and memory."""
    lines = ['| task | members | batch, size | cohort s | separate s | ratio cohort/separate, '
             'median [IQR] | CPU-time ratio | extra peak MiB cohort / separate round | '
             'resident MiB: teacher + members (cohort) / teacher + largest member (alone) |',
             '|' + '---|' * 9]
    for r in report['results']:
        m, q, c = r['median_s'], r['ratio'], r['cpu_ratio']
        res, peak = r['resident_bytes'], r['peak_step_bytes']
        lines.append(
            f"| {r['task']} | {len(r['members'])} | {r['batch']}, {r['input_size']} | "
            f"{m['cohort']:.3f} | {m['separate']:.3f} | {q['median']:.3f} "
            f"[{q['q1']:.3f}-{q['q3']:.3f}] | {c['median']:.3f} | {mib(peak['cohort'])} / "
            f"{mib(peak['separate'])} | {mib(res['teacher'] + res['members'])} / "
            f"{mib(res['teacher'] + res['largest_member'])} |")
    return '\n'.join(lines)
