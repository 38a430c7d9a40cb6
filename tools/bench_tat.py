"""Time and peak memory of one TaT loss step on segmentation-sized maps, compared two ways.

    python tools/bench_tat.py [--comparisons loop global] [--maps 33x33 128x128 129x129]
                              [--batches 2 8] [--repeats 5] [--warmup 1] [--max-step-s 60]
                              [--no-memory] [--out result.json]
    python tools/bench_tat.py --smoke [--out result.json]   # tiny shapes, in-process

* ``loop``: kdbench's batched hierarchical loss (``TaT``, ``mode='hierarchical'``) against
  a per-image loop of the same maths structured as the official TaT-seg code: for each
  image its own connectors at batch 1, the patch-group and anchor losses with the explicit
  attention, the losses summed over the images, one backward.
* ``global``: one-to-all TaT (``mode='global'``) with the explicit ``softmax(q k^T) v``,
  with the memory-efficient kernel (``scaled_dot_product_attention``), and the
  hierarchical loss, on the same maps.

A step is the loss alone: zero the gradients, forward through ``theta``/``phi``/``gamma``
(Conv1x1+BN, training mode) and the attention, ``backward()`` into the connectors and into
a random student feature that requires grad (the teacher feature has none). No networks,
no optimizer. The cases of one comparison, map and batch are built in one process and
timed interleaved: ``warmup`` untimed steps each, then ``repeats`` rounds of one step per
case (the order rotates); medians of wall-clock and process CPU time. A case whose first
warm-up step takes longer than ``max_step_s`` is not repeated (its one step is
reported). Peak memory: each case once more in a fresh interpreter
(:func:`kdbench.benchmark.measure.peak_extra_bytes` around its first step; in-process for
``--smoke``). ``loss_eval`` is the loss in eval-mode BatchNorm (no gradient), where the
batched and the per-image forms must agree; in training mode they differ by design (batch
vs per-image BatchNorm statistics). A case whose explicit attention (logits, softmax and
their gradients: 4 matrices per image) would not fit into the available memory is
reported as "did not run" without trying, as is a case that runs out of memory; any other
error marks the case "failed", and the tool then exits 1 (after the table, naming each).
Results: docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

import torch  # noqa: E402
from torch import Tensor  # noqa: E402

import kdbench.distill  # noqa: F401,E402  (fills DISTILL_METHODS)
from kdbench.benchmark.measure import available_bytes, peak_extra_bytes, timed  # noqa: E402
from kdbench.distill.functional import tat_anchor_loss, tat_patch_group_loss  # noqa: E402
from kdbench.distill.taps import TapPoint  # noqa: E402
from kdbench.registry import DISTILL_METHODS  # noqa: E402

TAP = 'feat'
CONNECTOR = 'conv1x1_bn'
#: Map name -> channels (student, teacher), size and hierarchical settings. Stage: the last
#: encoder stage of R101 -> R18 (stride 16 of a 513 crop, tat_deeplabv3p_r101_r18_voc);
#: decoder: the 256-channel decoder feature (stride 4, the official VOC R18 script's
#: settings, tat_official_deeplabv3p_r101_r18_voc): 129x129 for a 513 crop, 128x128 for 512.
STAGE = dict(c_s=512, c_t=2048, patches=(4, 4), groups=4, anchors=(8, 8))
DECODER = dict(c_s=256, c_t=256, patches=(16, 16), groups=64, anchors=(32, 32))
MAPS: Dict[str, dict] = {'33x33': dict(size=(33, 33), **STAGE),
                         '128x128': dict(size=(128, 128), **DECODER),
                         '129x129': dict(size=(129, 129), **DECODER)}
SMOKE_MAPS: Dict[str, dict] = {'8x8': dict(size=(8, 8), c_s=8, c_t=16, patches=(2, 2),
                                           groups=2, anchors=(4, 4))}
#: Comparison -> its variants; the first is the reference of the speed and memory ratios.
COMPARISONS: Dict[str, Tuple[str, ...]] = {
    'loop': ('loop', 'hierarchical'),
    'global': ('global_explicit', 'global_efficient', 'hierarchical')}
DEFAULT_MAPS = {'loop': ('128x128',), 'global': ('33x33', '128x128', '129x129')}
VARIANTS = ('hierarchical', 'loop', 'global_explicit', 'global_efficient')
HIER_KEYS = ('patches', 'groups', 'anchors')
FIELDS = ('comparison', 'map', 'variant', 'batch', 'student_shape', 'teacher_shape',
          'attention_floats_per_image', 'status', 'reason', 'warmup_s', 'times_s', 'cpu_s',
          'time_median_s', 'time_min_s', 'time_max_s', 'cpu_median_s', 'peak_mem_bytes',
          'memory_method', 'loss', 'loss_eval')


def attention_floats(spec: dict, variant: str) -> int:
    """Attention matrix entries per image: ``(H*W)^2`` for global; ``groups * (h*w)^2 +
    (a_h*a_w)^2`` for hierarchical (``h, w = H // n, W // m`` the patch, ``a = H // k``
    the anchor map with kernel ``k = H // anchors``)."""
    height, width = spec['size']
    if variant.startswith('global'):
        return (height * width) ** 2
    (n, m), (a_h, a_w) = spec['patches'], spec['anchors']
    anchors = (height // (height // a_h)) * (width // (width // a_w))
    return spec['groups'] * ((height // n) * (width // m)) ** 2 + anchors ** 2


def loop_loss(method: torch.nn.Module, feat_s: Tensor, feat_t: Tensor) -> Tensor:
    """The hierarchical TaT loss as the official TaT-seg code computes it: image by image
    (connectors at batch 1), explicit attention, mean over the images."""
    kernel = method.anchor_kernel(*feat_t.shape[2:])
    total = 0
    for index in range(feat_t.shape[0]):
        s, t = feat_s[index:index + 1], feat_t[index:index + 1]
        q, k, v = method.theta(s), method.phi(t), method.gamma(s)
        total = total + method.delta * tat_patch_group_loss(q, k, v, t, method.patches,
                                                            method.groups) + \
            method.zeta * tat_anchor_loss(q, k, v, t, kernel, efficient=False)
    return method.loss_weight * total / feat_t.shape[0]


class Case:
    """One variant on one map at one batch size: the method, random features, a step."""

    def __init__(self, spec: dict, variant: str, batch: int, device: str):
        torch.manual_seed(0)
        hier = not variant.startswith('global')
        self.method = DISTILL_METHODS.build(dict(
            type='TaT', mode='hierarchical' if hier else 'global', theta=CONNECTOR,
            phi=CONNECTOR, gamma=CONNECTOR, taps=(TAP,),
            efficient={'global_explicit': False, 'global_efficient': True}.get(variant),
            **({key: spec[key] for key in HIER_KEYS} if hier else {})))
        self.method.bind({TAP: TapPoint(module='x', channels=spec['c_s'])},
                         {TAP: TapPoint(module='x', channels=spec['c_t'])})
        self.method.to(device).train()
        self.feat_s = torch.randn(batch, spec['c_s'], *spec['size'], device=device,
                                  requires_grad=True)
        self.feat_t = torch.randn(batch, spec['c_t'], *spec['size'], device=device)
        self.loop = variant == 'loop'
        self.loss = float('nan')

    def forward(self) -> Tensor:
        if self.loop:
            return loop_loss(self.method, self.feat_s, self.feat_t)
        return sum(self.method({TAP: self.feat_s}, {TAP: self.feat_t}).values())

    def step(self) -> None:
        self.method.zero_grad(set_to_none=True)
        self.feat_s.grad = None
        loss = self.forward()
        loss.backward()
        self.loss = float(loss.detach())

    def eval_loss(self) -> float:
        self.method.eval()
        with torch.no_grad():
            loss = float(self.forward())
        self.method.train()
        return loss


def _result(comparison: str, map_name: str, spec: dict, variant: str, batch: int) -> dict:
    result = {field: None for field in FIELDS}
    result.update(comparison=comparison, map=map_name, variant=variant, batch=batch,
                  student_shape=[batch, spec['c_s'], *spec['size']],
                  teacher_shape=[batch, spec['c_t'], *spec['size']],
                  attention_floats_per_image=attention_floats(spec, variant), status='ok',
                  reason='', times_s=[], cpu_s=[], memory_method='')
    return result


def _too_big(spec: dict, variant: str, batch: int, device: str) -> Optional[str]:
    if variant != 'global_explicit':
        return None
    needed = 4 * 4 * attention_floats(spec, variant) * batch
    available = (torch.cuda.mem_get_info()[0] if device.startswith('cuda')
                 else available_bytes())
    if available is not None and needed > 0.9 * available:
        return (f'the explicit attention alone needs ~{needed / 2 ** 30:.1f} GiB (logits, '
                f'softmax and their gradients), {available / 2 ** 30:.1f} GiB available')
    return None


def out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the case did not fit in memory (a result, not a failure)."""
    return isinstance(error, (MemoryError, torch.cuda.OutOfMemoryError)) or any(
        text in str(error) for text in ('out of memory', "can't allocate memory"))


def time_group(comparison: str, map_name: str, spec: dict, batch: int, repeats: int,
               warmup: int, max_step_s: float, device: str) -> List[dict]:
    """Build the comparison's variants for one map and batch and time them interleaved."""
    cuda = device.startswith('cuda')
    results, cases = [], {}
    for variant in COMPARISONS[comparison]:
        result = _result(comparison, map_name, spec, variant, batch)
        results.append(result)
        reason = _too_big(spec, variant, batch, device)
        if reason:
            result.update(status='did not run', reason=reason)
            continue
        try:
            case = Case(spec, variant, batch, device)
            result['loss_eval'] = case.eval_loss()
            for index in range(max(warmup, 1)):
                seconds, cpu_seconds = timed(case.step, cuda)
                if index == 0:
                    result['warmup_s'] = round(seconds, 4)
                if seconds > max_step_s:
                    result.update(status='too slow', times_s=[round(seconds, 4)],
                                  cpu_s=[round(cpu_seconds, 4)], loss=case.loss, reason=(
                                      f'one step took {seconds:.1f} s (> max_step_s '
                                      f'{max_step_s:g}); not repeated'))
                    break
            else:
                cases[variant] = (case, result)
        except (RuntimeError, MemoryError) as error:     # includes CUDA out-of-memory
            result.update(status='did not run' if out_of_memory(error) else 'failed',
                          reason=f'{type(error).__name__}: {error}'[:300])
    names = list(cases)
    for index in range(repeats if names else 0):
        for variant in names[index % len(names):] + names[:index % len(names)]:
            case, result = cases[variant]
            seconds, cpu_seconds = timed(case.step, cuda)
            result['times_s'].append(round(seconds, 5))
            result['cpu_s'].append(round(cpu_seconds, 5))
    for result in results:
        times = result['times_s']
        if times:
            result.update(time_median_s=round(statistics.median(times), 5),
                          time_min_s=min(times), time_max_s=max(times))
        if result['cpu_s']:
            result['cpu_median_s'] = round(statistics.median(result['cpu_s']), 5)
        if result['variant'] in cases:
            result['loss'] = cases[result['variant']][0].loss
    return results


def measure_memory(map_name: str, variant: str, batch: int, smoke: bool,
                   device: str) -> Tuple[Optional[int], str]:
    """Extra peak memory of one step of a freshly built case (in this process)."""
    spec = (SMOKE_MAPS if smoke else MAPS)[map_name]
    case = Case(spec, variant, batch, device)
    return peak_extra_bytes(case.step, device.startswith('cuda'))


def memory_in_subprocess(map_name: str, variant: str, batch: int, timeout: float
                         ) -> Tuple[Optional[int], str]:
    """:func:`measure_memory` in a fresh interpreter (clean peak RSS; an OOM kill stays
    contained); ``(None, reason)`` when it gives no result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'memory.json')
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, (REPO_ROOT, os.environ.get('PYTHONPATH')))))
        command = [sys.executable, os.path.abspath(__file__), '--memory-case', map_name,
                   variant, str(batch), '--child-out', out]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env=env)
        except subprocess.TimeoutExpired:
            return None, f'no result within {timeout:g} s'
        if proc.returncode == 0 and os.path.exists(out):
            with open(out) as f:
                data = json.load(f)
            return data['peak'], data['method'] + ', fresh subprocess'
    if proc.returncode < 0:
        return None, f'killed by signal {-proc.returncode}'
    return None, f'exit code {proc.returncode}: {proc.stderr.strip()[-300:]}'


def run(comparisons: Sequence[str], batches: Sequence[int], repeats: int, warmup: int = 1,
        max_step_s: float = 60.0, maps: Optional[Sequence[str]] = None, memory: bool = True,
        smoke: bool = False, timeout: float = 900.0, device: Optional[str] = None,
        log: Callable[[str], None] = print) -> List[dict]:
    """Every comparison at every batch size on its maps (``maps`` overrides the defaults);
    one result per variant (see :data:`FIELDS`)."""
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    results = []
    for comparison in comparisons:
        names = list(SMOKE_MAPS) if smoke else list(maps or DEFAULT_MAPS[comparison])
        for batch in batches:
            for map_name in names:
                spec = (SMOKE_MAPS if smoke else MAPS)[map_name]
                group = time_group(comparison, map_name, spec, batch, repeats, warmup,
                                   max_step_s, device)
                for result in group:
                    if memory and result['status'] not in ('did not run', 'failed'):
                        result['peak_mem_bytes'], result['memory_method'] = (
                            measure_memory(map_name, result['variant'], batch, True, device)
                            if smoke else memory_in_subprocess(map_name, result['variant'],
                                                               batch, timeout))
                    log(summary_line(result))
                results.extend(group)
    return results


def summary_line(r: dict) -> str:
    text = f"{r['comparison']} {r['map']} batch {r['batch']} {r['variant']}: {r['status']}"
    if r['time_median_s'] is not None:
        text += f", median {r['time_median_s']} s (cpu {r['cpu_median_s']} s)"
    elif r['warmup_s'] is not None:
        text += f", one step {r['warmup_s']} s"
    text += f", peak {_bytes(r['peak_mem_bytes'])}" + (f" ({r['reason']})" if r['reason'] else '')
    return text


def _bytes(value: Optional[float]) -> str:
    if value is None:
        return '-'
    for unit, scale in (('GiB', 2 ** 30), ('MiB', 2 ** 20), ('KiB', 2 ** 10)):
        if abs(value) >= scale:
            return f'{value / scale:.2f} {unit}'
    return f'{int(value)} B'


def _step_time(r: dict) -> Optional[float]:
    return r['warmup_s'] if r['status'] == 'too slow' else r['time_median_s']


def markdown_table(results: List[dict]) -> str:
    """One row per result; ratios against the first variant of the same comparison, map and
    batch (its time / this time: > 1 is faster; this memory / its memory)."""
    lines = ['| comparison | map (channels) | batch | variant | attention floats / image '
             '| time / step: median [min, max] | CPU s / step | speed vs ref | peak extra '
             'memory | memory vs ref | loss (train BN) | loss (eval BN) |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    refs: Dict[tuple, dict] = {}
    for r in results:
        key = (r['comparison'], r['map'], r['batch'])
        ref = refs.setdefault(key, r)
        if r['status'] == 'too slow':
            time_text = f"{r['warmup_s']:.1f} s (one step: too slow to repeat)"
        elif r['time_median_s'] is not None:
            time_text = (f"{r['time_median_s']:.3f} s [{r['time_min_s']:.3f}, "
                         f"{r['time_max_s']:.3f}]")
        else:
            time_text = f"{r['status']}: {r['reason']}"
        speed = memory = '-'
        if _step_time(ref) and _step_time(r):
            speed = f'{_step_time(ref) / _step_time(r):.2f}x'
            if ref['cpu_median_s'] and r['cpu_median_s']:
                speed += f" (CPU {ref['cpu_median_s'] / r['cpu_median_s']:.2f}x)"
        if ref['peak_mem_bytes'] and r['peak_mem_bytes']:
            memory = f"{r['peak_mem_bytes'] / ref['peak_mem_bytes']:.3f}x"
        cpu = '-' if r['cpu_median_s'] is None else f"{r['cpu_median_s']:.3f}"
        losses = ['-' if value is None else f'{value:.7g}'
                  for value in (r['loss'], r['loss_eval'])]
        channels = f"{r['student_shape'][1]}->{r['teacher_shape'][1]}"
        lines.append(f"| {r['comparison']} | {r['map']} ({channels}) | {r['batch']} | "
                     f"{r['variant']} | {r['attention_floats_per_image']:,} | {time_text} | "
                     f"{cpu} | {speed} | {_bytes(r['peak_mem_bytes'])} | {memory} | "
                     f"{losses[0]} | {losses[1]} |")
    return '\n'.join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--comparisons', nargs='+', choices=list(COMPARISONS),
                        default=list(COMPARISONS))
    parser.add_argument('--maps', nargs='+', choices=list(MAPS),
                        help='maps to run (default: loop on 128x128, global on all)')
    parser.add_argument('--batches', nargs='+', type=int, default=[2, 8])
    parser.add_argument('--repeats', type=int, default=5, help='timed rounds')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps per case')
    parser.add_argument('--max-step-s', type=float, default=60.0,
                        help='do not repeat a case whose first step takes longer')
    parser.add_argument('--timeout', type=float, default=900.0,
                        help='seconds per memory subprocess')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory pass')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny 8x8 maps, batch 2, 1 repeat, memory in-process (tests)')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--memory-case', nargs=3, help=argparse.SUPPRESS)
    parser.add_argument('--child-out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.batches) < 1 or args.repeats < 1:
        parser.error('--batches and --repeats must be at least 1')
    return args


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.memory_case:                              # child of memory_in_subprocess
        map_name, variant, batch = args.memory_case
        peak, method = measure_memory(map_name, variant, int(batch), False, device)
        with open(args.child_out, 'w') as f:
            json.dump(dict(peak=peak, method=method), f)
        return []
    if args.smoke:
        args.batches, args.repeats = [2], 1
    results = run(args.comparisons, args.batches, args.repeats, args.warmup, args.max_step_s,
                  args.maps, not args.no_memory, args.smoke, args.timeout, device)
    machine = (torch.cuda.get_device_name() if device == 'cuda'
               else f'CPU, {os.cpu_count()} cores')
    print(f'\nTaT loss step (forward + backward, connectors {CONNECTOR}, training mode), '
          f'{args.warmup} warm-up + {args.repeats} interleaved rounds, {machine}, torch '
          f"{torch.__version__}, {torch.get_num_threads()} threads, "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print(markdown_table(results))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(
                date=time.strftime('%Y-%m-%d %H:%M'), device=machine, torch=torch.__version__,
                argv=list(sys.argv[1:] if argv is None else argv),
                threads=torch.get_num_threads(), batches=args.batches, warmup=args.warmup,
                repeats=args.repeats, smoke=args.smoke, fields=list(FIELDS), cases=results),
                f, indent=2)
    return results


def failed_cases(results: List[dict]) -> List[str]:
    """``'<comparison> <map> batch <n> <variant>: <reason>'`` of every failed case."""
    return [f"{r['comparison']} {r['map']} batch {r['batch']} {r['variant']}: {r['reason']}"
            for r in results if r['status'] == 'failed']


if __name__ == '__main__':
    failures = failed_cases(main())
    if failures:
        sys.exit(f'{len(failures)} case(s) failed: ' + '; '.join(failures))
