"""The TaT benchmark (tools/bench_tat.py): the smoke run writes every field for every case,
the per-image loop and the batched loss agree in eval-mode BatchNorm, and the analytic
attention sizes are the hand-computed ones; a case that fails (not out of memory) makes the
tool exit 1."""
import importlib.util
import json
import os
import runpy

import pytest
import torch
from shared_setup import ROOT

_spec = importlib.util.spec_from_file_location('bench_tat',
                                               os.path.join(ROOT, 'tools', 'bench_tat.py'))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_smoke_json_fields_times_losses_and_sizes(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    results = bench.main(['--smoke', '--out', str(out)])
    data = json.loads(out.read_text())
    assert data['smoke'] is True and data['batches'] == [2] and data['repeats'] == 1
    assert data['cases'] == json.loads(json.dumps(results))
    assert [(c['comparison'], c['variant']) for c in data['cases']] == [
        ('loop', 'loop'), ('loop', 'hierarchical'), ('global', 'global_explicit'),
        ('global', 'global_efficient'), ('global', 'hierarchical')]
    for case in data['cases']:
        assert set(bench.FIELDS) <= set(case), set(bench.FIELDS) - set(case)
        assert case['status'] == 'ok', case['reason']
        assert len(case['times_s']) == 1 and case['times_s'][0] > 0 and case['warmup_s'] > 0
        assert case['time_min_s'] <= case['time_median_s'] <= case['time_max_s']
        assert isinstance(case['peak_mem_bytes'], int) and case['peak_mem_bytes'] >= 0
        assert case['memory_method'] and case['loss'] > 0 and case['loss_eval'] > 0
        assert case['student_shape'] == [2, 8, 8, 8] and case['teacher_shape'] == [2, 16, 8, 8]
    by = {(c['comparison'], c['variant']): c for c in data['cases']}
    # Eval-mode BatchNorm: the per-image loop computes the batched loss.
    assert by['loop', 'loop']['loss_eval'] == pytest.approx(
        by['loop', 'hierarchical']['loss_eval'], rel=1e-6)
    # Explicit and memory-efficient global attention: the same loss, train and eval.
    explicit, efficient = by['global', 'global_explicit'], by['global', 'global_efficient']
    assert explicit['loss'] == pytest.approx(efficient['loss'], rel=1e-6)
    assert explicit['loss_eval'] == pytest.approx(efficient['loss_eval'], rel=1e-6)
    # Global on an 8x8 map: one (8*8)^2 attention per image. Hierarchical, patches 2x2 ->
    # 4x4 patches of 16 positions, 2 groups: 2 * 16^2; anchors 4x4 (kernel 2): 16^2.
    assert explicit['attention_floats_per_image'] == 64 ** 2
    assert by['loop', 'loop']['attention_floats_per_image'] == 2 * 16 ** 2 + 16 ** 2
    table = capsys.readouterr().out
    assert '| loop | 8x8 (8->16) | 2 | hierarchical | 768 |' in table
    assert '| global | 8x8 (8->16) | 2 | global_explicit | 4,096 |' in table


def test_analytic_sizes_of_the_real_maps():
    floats = bench.attention_floats
    assert floats(bench.MAPS['128x128'], 'global_efficient') == (128 * 128) ** 2
    assert floats(bench.MAPS['129x129'], 'global_explicit') == (129 * 129) ** 2
    # Official VOC R18 decoder: 256 patches of 8x8 in 64 groups + a 32x32 anchor map.
    assert floats(bench.MAPS['128x128'], 'hierarchical') == 64 * 64 ** 2 + 1024 ** 2
    assert floats(bench.MAPS['129x129'], 'loop') == 64 * 64 ** 2 + 1024 ** 2
    # Stage map 33x33: 16 patches of 8x8 in 4 groups + an 8x8 anchor map (kernel 4).
    assert floats(bench.MAPS['33x33'], 'hierarchical') == 4 * 64 ** 2 + 64 ** 2


def test_a_case_too_big_for_memory_is_reported_not_run(monkeypatch):
    monkeypatch.setattr(bench, 'available_bytes', lambda: 2 ** 16)   # 64 KiB
    results = bench.time_group('global', '8x8', bench.SMOKE_MAPS['8x8'], 2, 1, 1, 60.0,
                               'cpu')
    explicit = results[0]
    assert explicit['variant'] == 'global_explicit' and explicit['status'] == 'did not run'
    assert 'explicit attention alone needs' in explicit['reason']
    assert [r['status'] for r in results[1:]] == ['ok', 'ok']


def test_a_case_slower_than_max_step_s_is_timed_once():
    results = bench.time_group('loop', '8x8', bench.SMOKE_MAPS['8x8'], 2, 3, 1, 0.0, 'cpu')
    for r in results:
        assert r['status'] == 'too slow' and 'not repeated' in r['reason']
        assert len(r['times_s']) == len(r['cpu_s']) == 1 and r['loss'] > 0
    assert '(one step: too slow to repeat)' in bench.markdown_table(results)


def test_loop_loss_is_the_mean_of_per_image_losses():
    case = bench.Case(bench.SMOKE_MAPS['8x8'], 'loop', 3, 'cpu')
    case.method.eval()
    with torch.no_grad():
        whole = bench.loop_loss(case.method, case.feat_s, case.feat_t)
        parts = [bench.loop_loss(case.method, case.feat_s[i:i + 1], case.feat_t[i:i + 1])
                 for i in range(3)]
    assert whole.item() == pytest.approx(sum(parts).item() / 3, rel=1e-6)


def test_out_of_memory_did_not_run_other_errors_failed_and_the_tool_exits_1(monkeypatch):
    errors = {'loop': RuntimeError('CUDA out of memory. Tried to allocate 9 GiB'),
              'hierarchical': RuntimeError('shape mismatch')}

    def broken_case(spec, variant, batch, device):
        raise errors[variant]
    monkeypatch.setattr(bench, 'Case', broken_case)
    results = bench.time_group('loop', '8x8', bench.SMOKE_MAPS['8x8'], 2, 1, 1, 60.0, 'cpu')
    assert [r['status'] for r in results] == ['did not run', 'failed']
    assert bench.failed_cases(results) == [
        'loop 8x8 batch 2 hierarchical: RuntimeError: shape mismatch']
    assert '| failed: RuntimeError: shape mismatch |' in bench.markdown_table(results)

    import kdbench.distill.functional as functional

    def broken_loss(*args, **kwargs):
        raise RuntimeError('shape mismatch')
    monkeypatch.setattr(functional, 'tat_patch_group_loss', broken_loss)   # the loop's loss
    monkeypatch.setattr('sys.argv', ['bench_tat.py', '--smoke', '--comparisons', 'loop'])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(os.path.join(ROOT, 'tools', 'bench_tat.py'), run_name='__main__')
    assert done.value.code == ('1 case(s) failed: loop 8x8 batch 2 loop: RuntimeError: '
                               'shape mismatch')
