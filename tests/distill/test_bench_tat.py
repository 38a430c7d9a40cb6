"""tools/bench_tat.py: the smoke run writes every field for every case, positive times and
the analytic attention sizes computed by hand for the smoke shapes."""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIELDS = ('case', 'description', 'mode', 'settings', 'batch', 'student_shape', 'teacher_shape',
          'map_size', 'attention_floats_per_image', 'attention_floats_patch',
          'attention_floats_anchor', 'attention_bytes_per_step', 'attention_gflop_fwd_per_image',
          'status', 'reason', 'warmup_s', 'times_s', 'time_median_s', 'time_min_s',
          'time_max_s', 'mem_before_bytes', 'peak_mem_bytes', 'memory_method', 'loss')


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location(
        'bench_tat', os.path.join(ROOT, 'tools', 'bench_tat.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_smoke_json_fields_times_and_sizes(bench, tmp_path, capsys):
    out = tmp_path / 'bench.json'
    results = bench.main(['--smoke', '--out', str(out)])
    data = json.loads(out.read_text())
    assert data['smoke'] is True and data['batch'] == 2 and data['repeats'] == 1
    assert [case['case'] for case in data['cases']] == ['smoke_global', 'smoke_hier']
    assert data['cases'] == json.loads(json.dumps(results))
    for case in data['cases']:
        assert set(FIELDS) <= set(case), set(FIELDS) - set(case)
        assert case['status'] == 'ok', case['reason']
        assert len(case['times_s']) == 1 and all(t > 0 for t in case['times_s'])
        assert 0 < case['time_min_s'] <= case['time_median_s'] <= case['time_max_s']
        assert case['warmup_s'] > 0
        assert isinstance(case['peak_mem_bytes'], int) and case['peak_mem_bytes'] >= 0
        assert case['mem_before_bytes'] > 0 and case['memory_method']
        assert case['loss'] > 0
        assert case['student_shape'] == [2, 8, 8, 8] and case['teacher_shape'] == [2, 16, 8, 8]
    by_name = {case['case']: case for case in data['cases']}
    # Global on an 8x8 map: one (8*8)^2 attention per image.
    glob = by_name['smoke_global']
    assert glob['attention_floats_per_image'] == 64 ** 2 == 4096
    assert glob['attention_bytes_per_step'] == 4096 * 4 * 2
    # q k^T and A v over the 16 teacher channels: 2 matmuls * 2 flops * 16 * 64^2.
    assert glob['attention_gflop_fwd_per_image'] == pytest.approx(4 * 16 * 64 ** 2 / 1e9)
    # Hierarchical, patches 2x2 -> 4x4 patches of 16 positions, 2 groups: 2 * 16^2 = 512;
    # anchors 4x4 -> kernel 2, a 4x4 anchor map: 16^2 = 256.
    hier = by_name['smoke_hier']
    assert hier['attention_floats_patch'] == 2 * 16 ** 2 == 512
    assert hier['attention_floats_anchor'] == 16 ** 2 == 256
    assert hier['attention_floats_per_image'] == 768
    assert hier['attention_bytes_per_step'] == 768 * 4 * 2
    assert hier['settings'] == dict(patches=[2, 2], groups=2, anchors=[4, 4],
                                    connectors='conv1x1_bn')
    table = capsys.readouterr().out
    assert '| 4,096 (16.00 KiB) |' in table and '| 768 (3.00 KiB) |' in table


def test_analytic_sizes_of_the_real_cases(bench):
    sizes = {name: bench.attention_size(case)['total'] for name, case in bench.CASES.items()}
    assert sizes['decoder_global'] == (128 * 128) ** 2             # 1 GiB fp32 per image
    assert sizes['stage_r18_global'] == sizes['stage_mbv2_global'] == 1024 ** 2
    # 16 patches of 8x8 in 4 groups + an 8x8 anchor map (kernel 4).
    assert sizes['stage_r18_hier'] == 4 * 64 ** 2 + 64 ** 2
    # Official VOC R18: 256 patches of 8x8 in 64 groups + a 32x32 anchor map (kernel 4).
    assert sizes['decoder_r18_hier'] == 64 * 64 ** 2 + 1024 ** 2
    # Official VOC MBv2: 1024 patches of 4x4 in 1024 groups + a 64x64 anchor map (kernel 2).
    assert sizes['decoder_mbv2_hier'] == 1024 * 16 ** 2 + 4096 ** 2
