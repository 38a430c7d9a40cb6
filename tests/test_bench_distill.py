"""The distillation overhead benchmark (smoke mode): its report's fields, table and
ratio summaries; a failed case makes the tool exit 1. No timing is asserted."""
import importlib.util
import json
import os
import runpy

import pytest
import torch
from mmengine.registry import DefaultScope
from shared_setup import ROOT

from kdbench.benchmark import overhead, targets
from kdbench.distill import method_by_prefix
from kdbench.testing import Shape, TeacherCheckpoints


@pytest.fixture(scope='module')
def smoke_report(tmp_path_factory):
    spec = importlib.util.spec_from_file_location(
        'bench_distill', os.path.join(ROOT, 'tools', 'bench_distill.py'))
    bench_distill = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_distill)
    out = tmp_path_factory.mktemp('bench') / 'report.json'
    bench_distill.main(['--smoke', '--tasks', 'cifar', 'voc', '--methods', 'kd',
                        '--out', str(out)])
    with open(out) as f:
        return json.load(f)


def test_smoke_report_has_every_field(smoke_report):
    assert smoke_report['smoke'] and smoke_report['repeats'] == 1
    assert smoke_report['fields'] == list(overhead.FIELDS)
    for key in ('date', 'machine', 'torch', 'threads', 'load_average_start', 'argv'):
        assert key in smoke_report
    results = smoke_report['results']
    assert [(r['task'], r['method']) for r in results] == [('cifar', 'kd'), ('voc', 'kd')]
    for r in results:
        assert set(overhead.FIELDS) <= set(r), r['task']
        assert r['status'] == 'ok', r['reason']
        assert set(r['times_s']) == set(overhead.PHASES)
        assert all(len(v) == 1 and v[0] > 0 for v in r['times_s'].values())
        assert set(r['ratio']) >= {'median', 'q1', 'q3', 'min', 'max', 'values'}
        assert r['ratio']['median'] > 0 and r['cpu_ratio']['median'] > 0
        assert set(r['peak_mem_bytes']) == set(overhead.PHASES)
        assert r['memory_method']
        assert r['teacher_outputs_require_grad'] is False
        assert f"loss_{r['method']}" in r['losses']
        assert all(torch.isfinite(torch.tensor(v)) for v in r['losses'].values())
        assert r['meets_target'] is None          # no verdict from smoke shapes
    assert results[1]['batch'] == overhead.TASKS['voc'].smoke.batch


def test_markdown_table_has_a_row_per_case(smoke_report):
    table = overhead.markdown_table(smoke_report)
    assert len(table.splitlines()) == 2 + len(smoke_report['results'])


def test_summarise_ratio_per_round():
    times = dict(teacher=[1.0, 1.0, 2.0], student=[1.0, 3.0, 2.0], distill=[2.2, 4.0, 4.0])
    summary = overhead.summarise(times)
    assert summary['ratio']['values'] == pytest.approx([1.1, 1.0, 1.0])
    assert summary['ratio']['median'] == pytest.approx(1.0)
    assert summary['ratio']['max'] == pytest.approx(1.1)
    assert summary['median_s'] == dict(teacher=1.0, student=2.0, distill=4.0)


def test_every_registered_method_has_its_configs_and_target_per_task():
    assert overhead.methods() == ('kd', 'at', 'cat_kd', 'tat', 'cwd', 'dkd', 'dist', 'fitnet')
    for name, task in overhead.TASKS.items():
        for method in overhead.methods():
            assert os.path.isfile(os.path.join(ROOT, task.config.format(method=method)))
            expected = {('cifar', 'tat'): None, ('voc', 'tat'): 1.15}.get((name, method), 1.05)
            assert overhead.ratio_target(name, method) == expected, (name, method)


def test_targets_name_registered_methods_and_benchmark_tasks():
    for prefix, by_task in targets.TARGETS.items():
        assert method_by_prefix(prefix).config_prefix == prefix
        assert set(by_task) <= set(overhead.TASKS), prefix
    assert targets.ratio_target('voc', 'no_such_method') == targets.DEFAULT_TARGET == 1.05


def test_variant_switches_join_the_configs_model_speed(tmp_path):
    config = tmp_path / 'cl.py'
    config.write_text(f"_base_ = ['{ROOT}/configs/demo/kd_resnet20_resnet8_digits.py']\n"
                      'model = dict(speed=dict(channels_last=True))\n')
    with DefaultScope.overwrite_default_scope('kdbench'):
        case = overhead.build_case(str(config), Shape(2, 16),
                                   TeacherCheckpoints(str(tmp_path)),
                                   overhead.VARIANTS['bf16_teacher'])
    speed = case.distiller.speed
    assert speed.channels_last and speed.teacher_dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in case.distiller.teacher.parameters())


def test_a_failed_case_is_reported_and_the_tool_exits_1(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError('no such kernel')
    monkeypatch.setattr(overhead, 'build_case', broken)
    monkeypatch.setattr('sys.argv', ['bench_distill.py', '--smoke', '--tasks', 'cifar',
                                     '--methods', 'kd'])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(os.path.join(ROOT, 'tools', 'bench_distill.py'), run_name='__main__')
    assert done.value.code == ('1 case(s) failed: cifar/kd/default: RuntimeError: '
                               'no such kernel')
    assert 'failed' in capsys.readouterr().out                 # in the table too
