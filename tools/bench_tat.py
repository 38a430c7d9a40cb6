"""Memory and speed of one TaT loss step, global vs hierarchical, on segmentation-sized maps.

    python tools/bench_tat.py [--cases NAME ...] [--batch 2] [--repeats 5] [--warmup 1]
                              [--max-step-s 60] [--timeout 900] [--out result.json]
    python tools/bench_tat.py --smoke [--out result.json]      # tiny shapes, in-process
    python tools/bench_tat.py --list                           # the cases

For each case the registered ``TaT`` method is built (``DISTILL_METHODS``), bound to one
student and one teacher tap point (its connectors get the real channel counts) and one
training step of the loss alone is timed: zero the gradients, forward through
``theta``/``phi``/``gamma`` and the attention, ``backward()`` into the connectors and into
a random student feature that requires grad (the teacher feature has none). No optimizer
step, no networks: random features of the real shapes. All cases use Conv1x1+BN connectors
(the segmentation default), so global and hierarchical rows differ only in the attention
part (for hierarchical: patch-group reorganisation, anchor pooling and the two attentions).

Measured:

* time/step: ``--warmup`` untimed steps, then the median, min and max of ``--repeats``
  timed steps (``time.perf_counter``; on CUDA with ``torch.cuda.synchronize`` around).
* peak memory, CPU: each case runs in a fresh subprocess (``--case NAME``). After the
  method and the inputs exist, the process's peak RSS (``VmHWM``) is reset by writing ``5``
  to ``/proc/self/clear_refs`` and the RSS is read (``VmRSS``); after all steps (warm-up
  included) the reported figure is ``VmHWM - VmRSS_before``: the extra resident memory
  the step needs over the parameters and the inputs (activations, attention, gradients,
  allocator slack). Where ``clear_refs`` cannot be written it falls back to
  ``ru_maxrss`` (not reset, so an upper bound) and says so in ``memory_method``.
* peak memory, CUDA: ``torch.cuda.max_memory_allocated() - memory_allocated()`` before the
  steps (peak stats reset after the inputs are allocated); tensors only, no cache.
* analytic attention size, floats per image: ``(H*W)^2`` for global;
  ``groups * (h*w)^2 + (a_h*a_w)^2`` for hierarchical, with ``h, w = H // n, W // m`` the
  patch size and ``a_h, a_w = H // k_h, W // k_w`` the anchor map (``k = H // anchors``).
  Times 4 bytes and the batch for one step's attention matrix (the softmax output; the
  logits and both gradients have the same size).

A case whose attention alone (logits, softmax output and their gradients: 4 copies) would
not fit in the available memory is reported as "did not run" without trying; one whose
warm-up step exceeds ``--max-step-s`` is not repeated (its warm-up time is reported).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import torch

import kdbench.distill  # noqa: F401  (fills DISTILL_METHODS)
from kdbench.distill.taps import TapPoint
from kdbench.registry import DISTILL_METHODS

TAP = 'feat'
CONNECTOR = 'conv1x1_bn'
R18_STAGE = dict(patches=(4, 4), groups=4, anchors=(8, 8))      # tat_deeplabv3p_r101_r18_voc
MBV2_STAGE = dict(patches=(8, 8), groups=64, anchors=(16, 16))  # tat_deeplabv3p_r101_mbv2_voc
R18_DECODER = dict(patches=(16, 16), groups=64, anchors=(32, 32))  # tat_official_..._r18_voc
MBV2_DECODER = dict(patches=(32, 32), groups=1024, anchors=(64, 64))  # tat_official_.._mbv2

#: name -> description, student/teacher channels, map size, mode, hierarchical settings.
#: Stage maps: stride 16 of a 512 crop; decoder maps: the 256-ch decoder feature, stride 4.
CASES: Dict[str, dict] = {
    'stage_r18_global': dict(desc='R101->R18 last stage', c_s=512, c_t=2048, size=(32, 32),
                             mode='global'),
    'stage_r18_hier': dict(desc='R101->R18 last stage', c_s=512, c_t=2048, size=(32, 32),
                           mode='hierarchical', **R18_STAGE),
    'stage_mbv2_global': dict(desc='R101->MBv2 last stage', c_s=1280, c_t=2048, size=(32, 32),
                              mode='global'),
    'stage_mbv2_hier': dict(desc='R101->MBv2 last stage', c_s=1280, c_t=2048, size=(32, 32),
                            mode='hierarchical', **MBV2_STAGE),
    'decoder_r18_hier': dict(desc='decoder (official R18 settings)', c_s=256, c_t=256,
                             size=(128, 128), mode='hierarchical', **R18_DECODER),
    'decoder_mbv2_hier': dict(desc='decoder (official MBv2 settings)', c_s=256, c_t=256,
                              size=(128, 128), mode='hierarchical', **MBV2_DECODER),
    'decoder_global': dict(desc='decoder', c_s=256, c_t=256, size=(128, 128), mode='global'),
}
#: Tiny shapes for --smoke (tests): 8x8 maps, 8 -> 16 channels.
SMOKE_CASES: Dict[str, dict] = {
    'smoke_global': dict(desc='smoke', c_s=8, c_t=16, size=(8, 8), mode='global'),
    'smoke_hier': dict(desc='smoke', c_s=8, c_t=16, size=(8, 8), mode='hierarchical',
                       patches=(2, 2), groups=2, anchors=(4, 4)),
}
#: Fields of every case in the JSON output.
FIELDS = ('case', 'description', 'mode', 'settings', 'batch', 'student_shape', 'teacher_shape',
          'map_size', 'attention_floats_per_image', 'attention_floats_patch',
          'attention_floats_anchor', 'attention_bytes_per_step', 'attention_gflop_fwd_per_image',
          'status', 'reason', 'warmup_s', 'times_s', 'time_median_s', 'time_min_s',
          'time_max_s', 'mem_before_bytes', 'peak_mem_bytes', 'memory_method', 'loss')
HIER_KEYS = ('patches', 'groups', 'anchors')


def attention_size(case: dict) -> Dict[str, int]:
    """Analytic attention size in floats per image and forward attention matmul FLOPs.

    Global: one ``(H*W)^2`` matrix. Hierarchical: ``groups`` matrices of ``(h*w)^2`` for the
    patch-group loss (``h, w = H // n, W // m``) plus one ``(a_h*a_w)^2`` for the anchor loss
    (anchor map ``H // k_h x W // k_w`` with kernel ``k = (H // anchors_h, W // anchors_w)``).
    FLOPs: the two matmuls ``q k^T`` and ``A v`` (2 multiply-adds each) over the teacher's
    channels, ``4 * C * positions^2`` per attention (a group holds ``C*n*m/groups`` channels).
    """
    height, width = case['size']
    channels = case['c_t']
    if case['mode'] == 'global':
        positions = height * width
        return dict(total=positions ** 2, patch=0, anchor=0, flops=4 * channels * positions ** 2)
    n, m = case['patches']
    patch_positions = (height // n) * (width // m)
    kernel = (height // case['anchors'][0], width // case['anchors'][1])
    anchor_positions = (height // kernel[0]) * (width // kernel[1])
    patch = case['groups'] * patch_positions ** 2
    anchor = anchor_positions ** 2
    group_channels = channels * n * m // case['groups']
    flops = 4 * (case['groups'] * group_channels * patch_positions ** 2 +
                 channels * anchor_positions ** 2)
    return dict(total=patch + anchor, patch=patch, anchor=anchor, flops=flops)


def _status_kib(field: str) -> Optional[int]:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def _available_bytes() -> Optional[int]:
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _step(method: torch.nn.Module, feat_s: torch.Tensor, feat_t: torch.Tensor,
          cuda: bool) -> Tuple[float, float]:
    """One training step of the loss alone; returns (seconds, loss)."""
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    method.zero_grad(set_to_none=True)
    feat_s.grad = None
    loss = sum(method({TAP: feat_s}, {TAP: feat_t}).values())
    loss.backward()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, float(loss.detach())


def _base_result(name: str, case: dict, batch: int) -> dict:
    """The case's description and analytic sizes; measured fields ``None``."""
    height, width = case['size']
    size = attention_size(case)
    settings = {key: case[key] for key in HIER_KEYS if key in case}
    settings['connectors'] = CONNECTOR
    result = {field: None for field in FIELDS}
    result.update(case=name, description=case['desc'], mode=case['mode'], settings=settings,
                  batch=batch, student_shape=[batch, case['c_s'], height, width],
                  teacher_shape=[batch, case['c_t'], height, width],
                  map_size=f'{height}x{width}', attention_floats_per_image=size['total'],
                  attention_floats_patch=size['patch'], attention_floats_anchor=size['anchor'],
                  attention_bytes_per_step=4 * size['total'] * batch,
                  attention_gflop_fwd_per_image=size['flops'] / 1e9,
                  status='ok', reason='', times_s=[], memory_method='')
    return result


def run_case(name: str, case: dict, batch: int, repeats: int, warmup: int = 1,
             max_step_s: float = 60.0, device: Optional[str] = None) -> dict:
    """Build, bind and time ``case`` in this process; returns its result (see FIELDS)."""
    device = device or ('cuda' if torch.cuda.is_available() else 'cpu')
    cuda = device.startswith('cuda')
    result = _base_result(name, case, batch)
    result.update(device=device, threads=torch.get_num_threads(), torch=torch.__version__)
    needed = 4 * result['attention_bytes_per_step']
    available = (torch.cuda.mem_get_info()[0] if cuda else _available_bytes())
    if available is not None and needed > 0.9 * available:
        result.update(status='did not run', reason=(
            f'the attention alone needs ~{needed / 2 ** 30:.1f} GiB (logits, softmax and '
            f'their gradients), {available / 2 ** 30:.1f} GiB available'))
        return result

    torch.manual_seed(0)
    method = DISTILL_METHODS.build(dict(
        type='TaT', mode=case['mode'], theta=CONNECTOR, phi=CONNECTOR, gamma=CONNECTOR,
        taps=(TAP,), **{key: case[key] for key in HIER_KEYS if key in case}))
    method.bind({TAP: TapPoint(module='x', channels=case['c_s'])},
                {TAP: TapPoint(module='x', channels=case['c_t'])})
    method.to(device).train()
    feat_s = torch.randn(result['student_shape'], device=device, requires_grad=True)
    feat_t = torch.randn(result['teacher_shape'], device=device)

    if cuda:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        result['memory_method'] = 'cuda max_memory_allocated - memory_allocated before'
    else:
        before = _status_kib('VmRSS')
        if _reset_peak_rss() and before is not None:
            result['memory_method'] = 'VmHWM (reset) - VmRSS before the steps'
        else:
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            result['memory_method'] = 'ru_maxrss after - ru_maxrss before (not reset)'
        before *= 1024
    result['mem_before_bytes'] = before
    try:
        for index in range(max(warmup, 0)):
            seconds, loss = _step(method, feat_s, feat_t, cuda)
            result['warmup_s'] = round(seconds, 4) if index == 0 else result['warmup_s']
            if seconds > max_step_s:
                result.update(status='too slow', reason=(
                    f'warm-up step took {seconds:.1f} s (> --max-step-s {max_step_s:g}); '
                    'not repeated'), times_s=[round(seconds, 4)])
                break
        else:
            result['times_s'] = []
            for _ in range(repeats):
                seconds, loss = _step(method, feat_s, feat_t, cuda)
                result['times_s'].append(round(seconds, 5))
    except (RuntimeError, MemoryError) as error:   # includes torch.cuda.OutOfMemoryError
        result.update(status='did not run', reason=f'{type(error).__name__}: {error}'[:300])
        return result
    result['loss'] = loss
    times = result['times_s']
    result.update(time_median_s=round(statistics.median(times), 5), time_min_s=min(times),
                  time_max_s=max(times))
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = _status_kib('VmHWM') if 'VmHWM' in result['memory_method'] else None
        peak = 1024 * (peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    result['peak_mem_bytes'] = peak - before
    return result


def run_in_subprocess(name: str, args: argparse.Namespace) -> dict:
    """``run_case`` in a fresh interpreter (clean peak RSS, an OOM kill stays contained)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'case.json')
        command = [sys.executable, os.path.abspath(__file__), '--case', name, '--child-out', out,
                   '--batch', str(args.batch), '--repeats', str(args.repeats),
                   '--warmup', str(args.warmup), '--max-step-s', str(args.max_step_s)]
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            proc = None
        if proc is not None and proc.returncode == 0 and os.path.exists(out):
            with open(out) as f:
                return json.load(f)
    if proc is None:
        reason = f'no result within --timeout {args.timeout} s'
    elif proc.returncode < 0:
        reason = (f'killed by signal {-proc.returncode}'
                  + (' (likely out of memory)' if proc.returncode == -9 else ''))
    else:
        reason = f'exit code {proc.returncode}: {proc.stderr.strip()[-300:]}'
    result = _base_result(name, CASES[name], args.batch)
    result.update(status='did not run', reason=reason)
    return result


def _bytes(value: Optional[float]) -> str:
    if value is None:
        return '-'
    for unit, scale in (('GiB', 2 ** 30), ('MiB', 2 ** 20), ('KiB', 2 ** 10)):
        if abs(value) >= scale:
            return f'{value / scale:.2f} {unit}'
    return f'{int(value)} B'


def _seconds(value: float) -> str:
    return f'{value:.3f}' if value < 10 else f'{value:.1f}'


def markdown_table(results: List[dict]) -> str:
    """The results as a Markdown table (one row per case)."""
    lines = ['| case | mode | map | attention floats / image (analytic) '
             '| time / step, median [min, max] | peak memory |',
             '|---|---|---|---|---|---|']
    for r in results:
        mode = r['mode']
        if mode == 'hierarchical':
            s = r['settings']
            mode = (f"hierarchical (patches {s['patches'][0]}x{s['patches'][1]}, groups "
                    f"{s['groups']}, anchors {s['anchors'][0]}x{s['anchors'][1]})")
        floats = (f"{r['attention_floats_per_image']:,} "
                  f"({_bytes(4 * r['attention_floats_per_image'])})")
        channels = f"{r['student_shape'][1]}->{r['teacher_shape'][1]} ch"
        if r['status'] == 'ok':
            time_text = (f"{_seconds(r['time_median_s'])} s [{_seconds(r['time_min_s'])}, "
                         f"{_seconds(r['time_max_s'])}]")
        elif r['status'] == 'too slow':
            time_text = f"too slow: {r['reason']}"
        else:
            time_text = f"did not run: {r['reason']}"
        lines.append(f"| {r['description']} ({channels}) | {mode} | {r['map_size']} | {floats} "
                     f"| {time_text} | {_bytes(r['peak_mem_bytes'])} |")
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cases', nargs='+', choices=sorted(CASES), default=list(CASES),
                        help='cases to run (default: all, in the listed order)')
    parser.add_argument('--batch', type=int, default=2, help='images per step (default 2)')
    parser.add_argument('--repeats', type=int, default=5, help='timed steps per case')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps before them')
    parser.add_argument('--max-step-s', type=float, default=60.0,
                        help='do not repeat a case whose warm-up step takes longer')
    parser.add_argument('--timeout', type=float, default=900.0,
                        help='seconds per case subprocess before giving up on it')
    parser.add_argument('--smoke', action='store_true',
                        help='tiny shapes, 1 repeat, in-process (for tests)')
    parser.add_argument('--list', action='store_true', help='print the cases and exit')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--case', help=argparse.SUPPRESS)        # child: run one case
    parser.add_argument('--child-out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        parser.error('--batch and --repeats must be at least 1')

    if args.list:
        for name, case in CASES.items():
            print(f'{name}: {case}')
        return []
    if args.case:                                      # child process of run_in_subprocess
        result = run_case(args.case, CASES[args.case], args.batch, args.repeats, args.warmup,
                          args.max_step_s)
        result['memory_method'] += ', fresh subprocess'
        with open(args.child_out, 'w') as f:
            json.dump(result, f)
        return [result]

    cuda = torch.cuda.is_available()
    if args.smoke:
        args.repeats = 1
        results = [run_case(name, case, args.batch, 1, 1, args.max_step_s)
                   for name, case in SMOKE_CASES.items()]
        for result in results:
            result['memory_method'] += ', in-process'
    else:
        results = []
        for name in args.cases:
            results.append(run_in_subprocess(name, args))
            r = results[-1]
            print(f"{name}: {r['status']}"
                  + (f", median {r['time_median_s']} s, peak {_bytes(r['peak_mem_bytes'])}"
                     if r['status'] == 'ok' else f" ({r['reason']})"), flush=True)
    device = torch.cuda.get_device_name() if cuda else f'CPU, {os.cpu_count()} cores'
    print(f'\nTaT loss step (forward + backward, connectors {CONNECTOR}), batch {args.batch}, '
          f'{args.warmup} warm-up + {args.repeats} timed steps, {device}, torch '
          f'{torch.__version__}, {torch.get_num_threads()} threads, '
          f"{time.strftime('%Y-%m-%d')}\n")
    print(markdown_table(results))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(date=time.strftime('%Y-%m-%d'), argv=sys.argv[1:] if argv is None
                           else list(argv), device=device, torch=torch.__version__,
                           threads=torch.get_num_threads(), batch=args.batch,
                           warmup=args.warmup, repeats=args.repeats, smoke=args.smoke,
                           fields=list(FIELDS), cases=results), f, indent=2)
    return results


if __name__ == '__main__':
    main()
