"""What a distillation step costs over its parts: one teacher forward plus one student step.

For a shipped config (its student, teacher, methods and optimizer; random teacher weights
from a temporary checkpoint, random inputs of the task's shape: :mod:`kdbench.testing`)
three steps are timed in one process, interleaved, after warm-up:

* (a) ``teacher``: ``Distiller.teacher_forward`` on the preprocessed batch (the teacher's
  forward with its taps, exactly as the Distiller runs it, inside the optimizer wrapper's
  context, so under autocast with ``--amp``);
* (b) ``student``: a plain training step of the student alone: preprocessing, forward,
  task loss, backward, optimizer step (mmengine's ``train_step`` path);
* (c) ``distill``: ``Distiller.train_step``: preprocessing, teacher forward, student
  forward, task and method losses, backward, optimizer step.

Each repeat times (a), (b), (c) once (the order rotates between repeats) and yields one
overhead ratio ``c / (a + b)``; the report gives its median, quartiles and extremes.
A ratio of 1 means distillation costs exactly its parts. Peak memory is measured in a
separate pass (see :func:`peak_memory`).
"""
from __future__ import annotations

import functools
import gc
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.registry import DefaultScope

from kdbench.distill.table import registered_methods
from kdbench.testing import DistillerCase, Shape, TeacherCheckpoints, build_distiller_case

from .measure import mib, peak_extra_bytes, timed
from .targets import ratio_target

PHASES = ('teacher', 'student', 'distill')


def methods() -> Tuple[str, ...]:
    """The config prefixes of every registered method (the method table's order)."""
    return tuple(e.config_prefix for e in registered_methods())


@dataclass(frozen=True)
class Task:
    """A teacher-student pair and the input shapes it is benchmarked at (the batch's
    targets come from the student's task, :meth:`~kdbench.task.TaskModel.example_batch`).

    Args:
        config: config path pattern with ``{method}`` (a prefix of :func:`methods`).
        cpu, gpu, smoke: shapes on CPU, on a GPU, and in ``--smoke`` mode.
    """
    config: str
    cpu: Shape
    gpu: Shape
    smoke: Shape


TASKS: Dict[str, Task] = {
    'cifar': Task('configs/cls/{method}_resnet32x4_resnet8x4_cifar100.py', cpu=Shape(64, 32),
                  gpu=Shape(64, 32), smoke=Shape(4, 32)),
    'voc': Task('configs/seg/{method}_deeplabv3p_r101_r18_voc.py', cpu=Shape(2, 256),
                gpu=Shape(8, 512), smoke=Shape(2, 128)),
}

#: Named sets of Distiller speed switches (``--variants``), keys of ``model.speed``
#: (:class:`~kdbench.distill.speed.SpeedOptions`); ``amp`` switches the optimizer wrapper
#: to mixed precision instead (float16 + loss scaling on a GPU, bfloat16 on CPU).
VARIANTS: Dict[str, dict] = {
    'default': {},
    'inference_mode': dict(teacher_mode='inference_mode'),
    'channels_last': dict(channels_last=True),
    'compile': dict(compile_student=True),
    'bf16_teacher': dict(teacher_dtype='bfloat16'),
    'fp16_teacher': dict(teacher_dtype='float16'),
    'amp': dict(amp=True),
}

#: Fields of every result in the JSON output.
FIELDS = ('task', 'method', 'variant', 'config', 'options', 'batch', 'input_size', 'device',
          'status', 'reason', 'warmup', 'repeats', 'times_s', 'median_s', 'ratio',
          'ratio_of_medians', 'extra_s_median', 'images_per_s', 'cpu_times_s', 'cpu_ratio',
          'target', 'meets_target', 'peak_mem_bytes', 'memory_method', 'losses',
          'teacher_outputs_require_grad')


@dataclass
class Case(DistillerCase):
    """A built Distiller case (:class:`~kdbench.testing.DistillerCase`) with the three
    timed steps."""
    inputs: Optional[torch.Tensor] = None     # the preprocessed batch (:meth:`prepare`)
    log_vars: Optional[dict] = None           # losses of the last distillation step
    teacher_grad: Optional[bool] = None       # whether the teacher's outputs had history

    def teacher_step(self) -> None:
        """(a) the teacher's forward with its taps, as the Distiller runs it."""
        with self.distill_optim.optim_context(self.distiller):
            outputs = self.distiller.teacher_forward(self.inputs)
        self.teacher_grad = any(t.requires_grad or t.grad_fn is not None
                                for t in outputs.values())

    def student_step(self) -> None:
        """(b) one plain training step of the student: its forward as the Distiller runs
        it (``student_forward``: compiled if the Distiller compiles it, with its taps, which
        a compiled graph must always see), task loss, backward, step."""
        student = self.distiller.student
        with self.student_optim.optim_context(student):
            batch = student.data_preprocessor(self.data, True)
            losses, _ = self.distiller.student_forward(
                self.distiller.format_inputs(batch['inputs']), batch['data_samples'])
        loss, _ = student.parse_losses(losses)
        self.student_optim.update_params(loss)

    def distill_step(self) -> None:
        """(c) one training step of the Distiller (what the Runner calls)."""
        self.log_vars = self.distiller.train_step(self.data, self.distill_optim)

    def prepare(self) -> None:
        """Preprocess the batch once for the teacher-alone step."""
        batch = self.distiller.data_preprocessor(self.data, True)
        self.inputs = self.distiller.format_inputs(batch['inputs'])

    def steps(self) -> Dict[str, Callable[[], None]]:
        return dict(teacher=self.teacher_step, student=self.student_step,
                    distill=self.distill_step)


def build_case(config: str, shape: Shape, checkpoints: TeacherCheckpoints,
               options: Optional[dict] = None, device: str = 'cpu') -> Case:
    """The :class:`Case` of ``config``: :func:`kdbench.testing.build_distiller_case` (the
    Distiller with random weights, its optimizer wrappers, a random batch of ``shape``;
    speed switches ``options``)."""
    return Case(**vars(build_distiller_case(config, shape, checkpoints, options,
                                            device)))


def time_case(case: Case, repeats: int, warmup: int = 2
              ) -> Tuple[Dict[str, List[float]], Dict[str, List[float]]]:
    """``warmup`` untimed rounds of (c), (a), (b), then ``repeats`` rounds timing each once,
    the order rotating between rounds; returns wall-clock and CPU seconds per phase, one
    entry per round."""
    steps = case.steps()
    for _ in range(warmup):
        for name in ('distill', 'teacher', 'student'):
            steps[name]()
    wall: Dict[str, List[float]] = {name: [] for name in PHASES}
    cpu: Dict[str, List[float]] = {name: [] for name in PHASES}
    for index in range(repeats):
        order = PHASES[index % 3:] + PHASES[:index % 3]
        for name in order:
            seconds, cpu_seconds = timed(steps[name], case.cuda)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    return wall, cpu


def peak_memory(case: Case) -> Tuple[Dict[str, Optional[int]], str]:
    """Extra peak memory of each phase over what is live before it, in bytes.

    CUDA: ``max_memory_allocated`` minus ``memory_allocated`` before the phase (tensors
    only, peak statistics reset). CPU: the process's peak resident set (``VmHWM``, reset
    through ``/proc/self/clear_refs``) minus its resident set before the phase, after
    ``gc.collect()`` and glibc's ``malloc_trim(0)``: activations, gradients, optimizer
    state created on the first step, and allocator slack. ``tracemalloc`` cannot see
    torch's allocations. Without ``clear_refs`` the CPU figures are ``None``.
    """
    result: Dict[str, Optional[int]] = {}
    method = ''
    for name, step in case.steps().items():
        result[name], method = peak_extra_bytes(step, case.cuda)
    return result, method


def _quantiles(values: Sequence[float]) -> Dict[str, float]:
    ordered = sorted(values)
    if len(ordered) > 1:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method='inclusive')
    else:
        q1 = q3 = ordered[0]
    return dict(median=statistics.median(ordered), q1=q1, q3=q3, min=ordered[0],
                max=ordered[-1])


def summarise(times: Dict[str, List[float]]) -> dict:
    """Medians per phase and the per-round overhead ratio ``c / (a + b)``."""
    parts = zip(times['teacher'], times['student'], times['distill'])
    ratios = [c / (a + b) for a, b, c in parts]
    median = {name: statistics.median(values) for name, values in times.items()}
    return dict(median_s=median, ratio=dict(_quantiles(ratios), values=ratios),
                ratio_of_medians=median['distill'] / (median['teacher'] + median['student']),
                extra_s_median=median['distill'] - median['teacher'] - median['student'])


def _default_device() -> str:
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def task_shape(task: Task, smoke: bool, device: str) -> Shape:
    """The task's batch and input size for ``--smoke``, a GPU or the CPU."""
    return task.smoke if smoke else (task.gpu if device.startswith('cuda') else task.cpu)


def profile(task_name: str, method: str, variant: str = 'default', smoke: bool = False,
            steps: int = 3, rows: int = 20) -> str:
    """The operators taking most (self) time over ``steps`` distillation steps of one case,
    after two warm-up steps, as ``torch.profiler``'s table."""
    from torch.profiler import ProfilerActivity
    device = _default_device()
    task = TASKS[task_name]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == 'cuda' else [])
    with tempfile.TemporaryDirectory() as tmp, \
            DefaultScope.overwrite_default_scope('kdbench'):
        case = build_case(task.config.format(method=method), task_shape(task, smoke, device),
                          TeacherCheckpoints(tmp), VARIANTS[variant], device)
        for _ in range(2):
            case.distill_step()
        with torch.profiler.profile(activities=activities) as prof:
            for _ in range(steps):
                case.distill_step()
    sort = 'self_cuda_time_total' if device == 'cuda' else 'self_cpu_time_total'
    return (f'{task_name}/{method}/{variant}: {steps} distillation steps\n'
            + prof.key_averages().table(sort_by=sort, row_limit=rows))


def run_case(task_name: str, method: str, variant: str, repeats: int, warmup: int,
             checkpoints: TeacherCheckpoints, smoke: bool = False,
             device: Optional[str] = None) -> dict:
    """Build, time and measure one (task, method, variant); returns a result (FIELDS)."""
    device = device or _default_device()
    task = TASKS[task_name]
    shape = task_shape(task, smoke, device)
    target = ratio_target(task_name, method) if variant == 'default' else None
    result = {field: None for field in FIELDS}
    result.update(task=task_name, method=method, variant=variant,
                  config=task.config.format(method=method), options=VARIANTS[variant],
                  batch=shape.batch, input_size=[shape.size, shape.size], device=device,
                  status='ok', reason='', warmup=warmup, repeats=repeats, target=target)
    try:
        case = build_case(result['config'], shape, checkpoints,
                          VARIANTS[variant], device)
        case.prepare()
        times, cpu_times = time_case(case, repeats, warmup)
        memory, memory_method = peak_memory(case)
    except (RuntimeError, ValueError, MemoryError) as error:
        result.update(status='failed', reason=f'{type(error).__name__}: {error}'[:500])
        return result
    result.update(summarise(times), times_s=times, peak_mem_bytes=memory,
                  images_per_s={name: shape.batch / statistics.median(times[name])
                                for name in ('student', 'distill')},
                  memory_method=memory_method,
                  losses={k: float(v.detach()) for k, v in case.log_vars.items()},
                  teacher_outputs_require_grad=case.teacher_grad)
    if not case.cuda:
        result.update(cpu_times_s=cpu_times, cpu_ratio=summarise(cpu_times)['ratio'])
    if target is not None and not smoke:
        result['meets_target'] = result['ratio']['median'] <= target
    del case
    gc.collect()
    return result


def machine() -> str:
    """The device in words: GPU name or CPU cores and threads."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f'CPU, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads'


def run(tasks: Sequence[str], methods: Sequence[str], variants: Sequence[str] = ('default',),
        repeats: int = 10, warmup: int = 2, smoke: bool = False,
        log: Callable[[str], None] = functools.partial(print, flush=True)) -> dict:
    """Every (task, method, variant) in one process; returns the JSON-ready report."""
    if smoke:
        repeats, warmup = 1, 1
    load_start = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory() as tmp, \
            DefaultScope.overwrite_default_scope('kdbench'):
        checkpoints = TeacherCheckpoints(tmp)
        for task in tasks:
            for method in methods:
                for variant in variants:
                    results.append(run_case(task, method, variant, repeats, warmup,
                                            checkpoints, smoke))
                    log(summary_line(results[-1]))
    return dict(date=time.strftime('%Y-%m-%d %H:%M'), machine=machine(),
                torch=torch.__version__, threads=torch.get_num_threads(), smoke=smoke,
                repeats=repeats, warmup=warmup, load_average_start=load_start,
                load_average_end=os.getloadavg(), fields=list(FIELDS), results=results)


def summary_line(r: dict) -> str:
    """One line per result for the console."""
    head = f"{r['task']}/{r['method']}/{r['variant']}"
    if r['status'] != 'ok':
        return f"{head}: {r['status']} ({r['reason']})"
    q = r['ratio']
    m = r['median_s']
    return (f"{head}: ratio {q['median']:.3f} [IQR {q['q1']:.3f}-{q['q3']:.3f}] "
            f"teacher {m['teacher']:.3f} s, student {m['student']:.3f} s, "
            f"distill {m['distill']:.3f} s")


def markdown_table(report: dict) -> str:
    """The report as a Markdown table, one row per (task, method, variant)."""
    lines = ['| task | method | variant | batch, size | (a) teacher s | (b) student s '
             '| (c) distill s | ratio c/(a+b), median [IQR] (min-max) | target | peak MiB '
             'a / b / c |', '|' + '---|' * 10]
    for r in report['results']:
        if r['status'] != 'ok':
            lines.append(f"| {r['task']} | {r['method']} | {r['variant']} | | | | | "
                         f"{r['status']}: {r['reason'][:80]} | | |")
            continue
        q, m, mem = r['ratio'], r['median_s'], r['peak_mem_bytes']
        target = '-' if r['target'] is None else (
            f"<= {r['target']}" + ('' if r['meets_target'] is None else
                                   (' met' if r['meets_target'] else ' **not met**')))
        lines.append(
            f"| {r['task']} | {r['method']} | {r['variant']} | {r['batch']}, "
            f"{r['input_size'][0]} | {m['teacher']:.3f} | {m['student']:.3f} | "
            f"{m['distill']:.3f} | {q['median']:.3f} [{q['q1']:.3f}-{q['q3']:.3f}] "
            f"({q['min']:.3f}-{q['max']:.3f}) | {target} | {mib(mem['teacher'])} / "
            f"{mib(mem['student'])} / {mib(mem['distill'])} |")
    return '\n'.join(lines)
