"""One check of kdbench's CUDA paths: training cases of every registered method.

``tools/gpu_check.py`` (docs/gpu.md) runs, for each task of
:data:`kdbench.benchmark.overhead.TASKS` (CIFAR resnet32x4 -> resnet8x4, batch 64;
VOC DeepLabV3+ R101 -> R18, batch 8 at 512x512) and every method registered in
``DISTILL_METHODS`` whose shipped config exists for that pair, with random weights and
one random batch of the task's shape (:mod:`kdbench.testing`, through
:func:`overhead.build_case`):

* ``fp32`` and ``amp`` (``--amp``: float16 with dynamic loss scaling on a GPU, bfloat16
  autocast on CPU): ``steps`` training steps. Checks: every loss term finite at every
  step and every trained parameter finite after them; the first-step losses of ``amp``
  within :data:`TOLERANCES` of ``fp32``'s; no loss-scale decrease (each one a step the
  grad scaler skipped) after the first ``warmup`` steps. Measured: images/s (median step
  after warm-up) and the overhead ratio c/(a+b) of :func:`overhead.time_case`;
* the Distiller speed switches ``model.speed.teacher_dtype='float16'``,
  ``channels_last=True`` and ``compile_student=True`` (:data:`VARIANTS`), once per task,
  the methods taken in turn:
  the same checks, their first-step losses against the same method's ``fp32`` case;
* peak ``torch.cuda.max_memory_allocated`` of each case (``None`` on CPU).

"First-step losses" are those of a forward pass before any update, run twice (the
Distiller's first loss step checks the taps eagerly; the second takes the path of every
later step, e.g. the compiled student) with dropout off and the BatchNorm statistics
restored afterwards: the same weights and batch then give the same losses in every
case up to rounding, whatever the memory format or random stream.
"""
from __future__ import annotations

import functools
import gc
import math
import os
import statistics
import tempfile
import time
import traceback
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.registry import DefaultScope
from torch import nn

from kdbench.distill.table import registered_methods
from kdbench.paths import config_path
from kdbench.registry import DISTILL_METHODS
from kdbench.testing import TeacherCheckpoints

from . import overhead
from .measure import timed
from .overhead import TASKS

#: Largest relative difference of a first-step loss term from the fp32 case, by the
#: lowest precision the case computes in (denominator at least :data:`LOSS_FLOOR`).
#: ``tf32``: float32 convolutions on a GPU, which cuDNN runs in TF32 by default (float16's
#: 10-bit mantissa), so two float32 cases with different kernels differ at that level.
TOLERANCES: Dict[str, float] = {'float32': 1e-3, 'tf32': 2e-2, 'float16': 2e-2,
                                'bfloat16': 5e-2}
LOSS_FLOOR = 1e-3
#: Distiller speed switches checked once per task (keys of :data:`overhead.VARIANTS`).
VARIANTS = ('fp16_teacher', 'channels_last', 'compile')
#: ``--smoke`` on CPU: a bfloat16 teacher (float16 convolutions on CPU are ~20x slower
#: than float32 ones: a minute per case) and torch.compile with dynamo + AOT autograd
#: only (inductor's C++ build of the student takes minutes on a small CPU).
SMOKE_VARIANTS = ('bf16_teacher', 'channels_last', 'compile')
SMOKE_COMPILE = dict(backend='aot_eager')


@dataclass(frozen=True)
class Settings:
    """Steps per case, steps before the scaler and throughput count, overhead rounds."""
    steps: int = 30
    warmup: int = 10
    repeats: int = 10
    smoke: bool = False
    device: str = 'cuda'

    @property
    def variants(self) -> Tuple[str, ...]:
        return SMOKE_VARIANTS if self.smoke else VARIANTS

    @classmethod
    def create(cls, smoke: bool, device: str) -> 'Settings':
        if smoke:
            return cls(steps=2, warmup=1, repeats=1, smoke=True, device=device)
        return cls(device=device)


def method_configs(task: str, names: Optional[Sequence[str]] = None
                   ) -> List[Tuple[str, str]]:
    """``(registered name, config path)`` for every registered method (or those in
    ``names``), in the method table's order: its shipped config is named after its
    ``config_prefix`` (``configs/cls/cat_kd_resnet32x4_resnet8x4_cifar100.py``); the file
    may not exist."""
    return [(e.name, TASKS[task].config.format(method=e.config_prefix))
            for e in registered_methods() if not names or e.name in names]


def has_config(config: str) -> bool:
    """Whether the config file exists (:func:`kdbench.paths.config_path`)."""
    return os.path.isfile(config_path(config))


def case_precision(label: str, device: str) -> str:
    """The lowest precision a case computes in (a key of :data:`TOLERANCES`)."""
    cuda = device.startswith('cuda')
    if label == 'amp':
        return 'float16' if cuda else 'bfloat16'
    if label.endswith('_teacher'):
        return overhead.VARIANTS[label]['teacher_dtype']
    return 'tf32' if cuda and torch.backends.cudnn.allow_tf32 else 'float32'


def case_options(label: str, smoke: bool) -> dict:
    """The speed switches (``model.speed`` keys, plus ``amp``) of a case label."""
    if label in ('fp32', 'amp'):
        return dict(amp=label == 'amp')
    options = dict(overhead.VARIANTS[label])
    if label == 'compile' and smoke:
        options['compile_student'] = dict(SMOKE_COMPILE)
    return options


@torch.no_grad()
def _restore(tensors: Sequence[torch.Tensor], saved: Sequence[torch.Tensor]) -> None:
    for tensor, value in zip(tensors, saved):
        tensor.copy_(value)


def first_step_losses(case: overhead.Case) -> Dict[str, float]:
    """Loss terms (``loss`` is their sum) of two forward passes on the case's batch
    before any update, as the optimizer wrapper runs them (autocast with AMP), with
    dropout off and the BatchNorm statistics left as they were; the second pass's."""
    distiller = case.distiller
    buffers = list(distiller.buffers())
    saved = [b.detach().clone() for b in buffers]
    dropouts = [m for m in distiller.modules()
                if isinstance(m, nn.modules.dropout._DropoutNd) and m.training]
    for module in dropouts:
        module.eval()
    try:
        for _ in range(2):
            with case.distill_optim.optim_context(distiller):
                batch = distiller.data_preprocessor(case.data, True)
                losses = distiller(**batch, mode='loss')
            _, log_vars = distiller.parse_losses(losses)
    finally:
        for module in dropouts:
            module.train()
        _restore(buffers, saved)
    return {k: float(v.detach()) for k, v in log_vars.items() if 'loss' in k}


def loss_difference(losses: Dict[str, float], reference: Dict[str, float]) -> float:
    """Largest ``|x - ref| / max(|ref|, LOSS_FLOOR)`` over the reference's loss terms
    (``inf`` when a term is missing)."""
    return max((abs(losses[k] - v) / max(abs(v), LOSS_FLOOR) if k in losses else math.inf)
               for k, v in reference.items())


def scaler_skips(scales: Sequence[Optional[float]], warmup: int) -> Optional[int]:
    """Loss-scale decreases from step ``warmup`` (0-based) on, given the scale before
    the first step and after each step; ``None`` without loss scaling."""
    if not scales or scales[0] is None:
        return None
    return sum(scales[i + 1] < scales[i] for i in range(warmup, len(scales) - 1))


def train_steps(case: overhead.Case, settings: Settings) -> dict:
    """``settings.steps`` distillation steps: loss terms, seconds and loss scale each."""
    scaler = getattr(case.distill_optim, 'loss_scaler', None)
    scales = [None if scaler is None else float(scaler.get_scale())]
    losses, seconds = [], []
    for _ in range(settings.steps):
        seconds.append(timed(case.distill_step, case.cuda)[0])
        losses.append({k: float(v.detach()) for k, v in case.log_vars.items() if 'loss' in k})
        scales.append(None if scaler is None else float(scaler.get_scale()))
    step_s = statistics.median(seconds[settings.warmup:] or seconds[-1:])
    trained = [p for p in case.distiller.parameters() if p.requires_grad]
    return dict(losses=[step['loss'] for step in losses],
                losses_finite=all(math.isfinite(x) for step in losses for x in step.values()),
                params_finite=all(bool(torch.isfinite(p).all()) for p in trained),
                loss_scales=scales if scaler is not None else None,
                scaler_skips_after_warmup=scaler_skips(scales, settings.warmup),
                step_s_median=step_s, images_per_s=case.data['inputs'].shape[0] / step_s)


def case_failures(result: dict, reference: Optional[Dict[str, float]]) -> List[str]:
    """What failed in a finished case (empty when it passed)."""
    failures = []
    if not result['losses_finite']:
        failures.append('non-finite loss')
    if not result['params_finite']:
        failures.append('non-finite parameters after the steps')
    if result['scaler_skips_after_warmup']:
        failures.append(f"{result['scaler_skips_after_warmup']} grad-scaler skips after "
                        'warm-up')
    if reference is not None:
        difference = loss_difference(result['first_losses'], reference)
        result['first_loss_rel_diff'] = difference
        if not difference <= result['tolerance']:
            failures.append(f'first-step losses differ from fp32 by {difference:.3g} '
                            f"(tolerance {result['tolerance']})")
    return failures


def run_case(task: str, method: str, config: str, label: str, settings: Settings,
             checkpoints: TeacherCheckpoints,
             reference: Optional[Dict[str, float]] = None) -> dict:
    """Build and check one case; any error is recorded as its failure."""
    shape = overhead.task_shape(TASKS[task], settings.smoke, settings.device)
    options = case_options(label, settings.smoke)
    precision = case_precision(label, settings.device)
    cuda = settings.device.startswith('cuda')
    result = dict(task=task, method=method, case=label, config=config, options=options,
                  batch=shape.batch, input_size=shape.size, device=settings.device,
                  steps=settings.steps, warmup=settings.warmup, precision=precision,
                  tolerance=None if label == 'fp32' else TOLERANCES[precision],
                  first_loss_rel_diff=None, overhead=None, status='ok', failures=[],
                  memory_method=('torch.cuda.max_memory_allocated over the case' if cuda else
                                 'not measured on CPU (null)'), peak_mem_bytes=None)
    start = time.perf_counter()
    if cuda:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        case = overhead.build_case(config, shape, checkpoints, options,
                                   settings.device)
        cls = DISTILL_METHODS.get(method)
        if not any(isinstance(m, cls) for m in case.distiller.methods.values()):
            return dict(result, status='skipped', note=f'{config} does not use {method}')
        result['first_losses'] = first_step_losses(case)
        result.update(train_steps(case, settings))
        result['failures'] = case_failures(result, reference)
        if label in ('fp32', 'amp'):
            case.prepare()
            times, _ = overhead.time_case(case, settings.repeats,
                                          warmup=0 if settings.smoke else 2)
            summary = overhead.summarise(times)
            result['overhead'] = dict(median_s=summary['median_s'],
                                      ratio={k: v for k, v in summary['ratio'].items()
                                             if k != 'values'})
        del case
    except Exception:   # a crash in one case is its failure; the others still run
        result['failures'] = [traceback.format_exc(limit=-3)[-1500:]]
    if cuda:
        result['peak_mem_bytes'] = torch.cuda.max_memory_allocated()
    result['status'] = 'failed' if result['failures'] else 'ok'
    result['wall_s'] = time.perf_counter() - start
    return result


def skipped(task: str, method: str, note: str) -> dict:
    return dict(task=task, method=method, case='-', status='skipped', note=note, failures=[])


def run(tasks: Sequence[str], settings: Settings, methods: Optional[Sequence[str]] = None,
        variants: Optional[Sequence[str]] = None,
        log: Callable[[str], None] = functools.partial(print, flush=True)) -> List[dict]:
    """Every training case of ``tasks`` (``variants``: default ``settings.variants``);
    one result dict per case, in order."""
    variants = settings.variants if variants is None else variants
    results: List[dict] = []

    def add(result: dict) -> dict:
        results.append(result)
        log(summary_line(result))
        return result

    with tempfile.TemporaryDirectory() as tmp, DefaultScope.overwrite_default_scope('kdbench'):
        checkpoints = TeacherCheckpoints(tmp)
        for task in tasks:
            found = method_configs(task, methods)
            references: Dict[str, Optional[Dict[str, float]]] = {}
            for method, config in found:
                if not has_config(config):
                    add(skipped(task, method, f'no shipped config {config}'))
                    continue
                fp32 = add(run_case(task, method, config, 'fp32', settings, checkpoints))
                references[method] = fp32.get('first_losses')
                add(run_case(task, method, config, 'amp', settings, checkpoints,
                             references[method]))
            usable = [(m, c) for m, c in found if references.get(m)]
            for index, variant in enumerate(variants):
                if not usable:
                    add(skipped(task, '-', f'{variant}: no method whose fp32 case ran'))
                    continue
                method, config = usable[index % len(usable)]
                add(run_case(task, method, config, variant, settings, checkpoints,
                             references[method]))
    return results


def summary_line(r: dict) -> str:
    """One console line per case."""
    head = f"{r['task']}/{r['method']}/{r['case']}"
    if r['status'] == 'skipped':
        return f"{head}: skipped ({r['note']})"
    if 'images_per_s' not in r:
        return f"{head}: failed ({r['failures'][0].strip().splitlines()[-1]})"
    text = (f"{head}: {r['status']}, first loss {r['first_losses']['loss']:.4f}, "
            f"{r['images_per_s']:.1f} images/s, {r['wall_s']:.1f} s")
    return text + ''.join(f'; {f}' for f in r['failures'])
