"""The cohort benchmark (tools/bench_cohort.py, smoke shapes, 2 members, 1 iteration): the
report's members, rounds, ratios, memory and table; the teacher runs once per cohort round
and once per Distiller in a separate round. No timing is asserted."""
import importlib.util
import json
import os

import pytest
from shared_setup import ROOT

from kdbench.benchmark import cohort_bench


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    spec = importlib.util.spec_from_file_location(
        'bench_cohort', os.path.join(ROOT, 'tools', 'bench_cohort.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path_factory.mktemp('bench') / 'report.json'
    tool.main(['--smoke', '--tasks', 'cifar', '--members', '2', '--iters', '1',
               '--warmup', '0', '--out', str(out)])
    with open(out) as f:
        return json.load(f)


def test_report_times_both_rounds_of_the_members(report):
    result, = report['results']
    assert result['task'] == 'cifar' and result['members'] == ['baseline', 'kd']
    assert (result['batch'], result['input_size']) == (4, 32)
    for times in (result['times_s'], result['cpu_times_s']):
        assert set(times) == {'cohort', 'separate'}
        assert all(len(v) == 1 and v[0] > 0 for v in times.values())
    ratio = result['times_s']['cohort'][0] / result['times_s']['separate'][0]
    assert result['ratio']['median'] == pytest.approx(ratio)
    # 1 timed cohort round + 1 separate round (1 Distiller) + one of each for memory.
    assert result['teacher_forwards'] == 4
    resident = result['resident_bytes']
    assert resident['teacher'] > 0 and resident['members'] > resident['largest_member'] > 0
    assert result['memory_method']


def test_markdown_table_has_a_row_per_task(report):
    lines = cohort_bench.markdown_table(report).splitlines()
    assert len(lines) == 3 and lines[2].startswith('| cifar | 2 | 4, 32 |')
