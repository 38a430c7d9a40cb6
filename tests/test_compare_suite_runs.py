"""tools/compare_suite_runs.py: two suite work dirs with the same rows and checkpoints are
identical; a changed weight, generator state, row or missing checkpoint is named."""
import importlib.util
import os

import numpy as np
import pytest
import torch
from shared_setup import ROOT

from kdbench.benchmark.compare import compare_suite_dirs, differences

HEADER = 'run,role,teacher,student,seed,metric,best,last,paper,status,work_dir,error\n'


def _suite_dir(root, best='84.0', weight=1.0, generator=1):
    """A suite work dir: results.csv with one row (absolute work dir, as the runner writes
    it) and that run's checkpoint."""
    run = root / 'kd' / 'seed_0'
    run.mkdir(parents=True)
    (root / 'results.csv').write_text(
        HEADER + f'KD a -> b,KD,a,b,0,accuracy/top1,{best},83.0,,done,{run},\n')
    torch.save(dict(state_dict={'fc.weight': torch.full((2, 2), weight)},
                    optimizer=dict(state={}, param_groups=[dict(lr=0.1)]),
                    param_schedulers=[], random_states=dict(numpy=np.array([generator])),
                    meta=dict(time=str(root))), run / 'epoch_1.pth')
    return root


_spec = importlib.util.spec_from_file_location(
    'compare_suite_runs', os.path.join(ROOT, 'tools', 'compare_suite_runs.py'))
TOOL = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(TOOL)


def _compare(first, second, capsys):
    """The tool's exit status and stdout."""
    status = TOOL.main([str(first), str(second)])
    return status, capsys.readouterr().out


def test_identical_suite_dirs_pass_whatever_their_paths_and_meta(tmp_path, capsys):
    first, second = _suite_dir(tmp_path / 'a'), _suite_dir(tmp_path / 'b')
    assert compare_suite_dirs(str(first), str(second)) == []
    status, out = _compare(first, second, capsys)
    assert status == 0 and 'identical: results.csv rows and 1 checkpoints' in out


@pytest.mark.parametrize('change, expected', [
    (dict(weight=1.0 + 1e-7), 'kd/seed_0/epoch_1.pth.state_dict.fc.weight differs'),
    (dict(generator=2), 'kd/seed_0/epoch_1.pth.random_states.numpy differs'),
    (dict(best='84.2'), "results.csv row 1: ['KD a -> b', 'KD', 'a', 'b', '0', "
                        "'accuracy/top1', '84.0'")])
def test_each_difference_is_named_and_exits_1(tmp_path, capsys, change, expected):
    first, second = _suite_dir(tmp_path / 'a'), _suite_dir(tmp_path / 'b', **change)
    found = compare_suite_dirs(str(first), str(second))
    assert len(found) == 1 and found[0].startswith(expected)
    status, out = _compare(first, second, capsys)
    assert status == 1 and expected in out and '1 difference(s)' in out


def test_a_missing_checkpoint_or_results_file_is_named(tmp_path):
    first, second = _suite_dir(tmp_path / 'a'), _suite_dir(tmp_path / 'b')
    os.remove(second / 'kd' / 'seed_0' / 'epoch_1.pth')
    assert compare_suite_dirs(str(first), str(second)) == [
        "checkpoints in one only: ['kd/seed_0/epoch_1.pth']"]
    os.remove(second / 'results.csv')
    with pytest.raises(FileNotFoundError, match='results.csv.*not found: run or collect'):
        compare_suite_dirs(str(first), str(second))


def test_differences_compare_dtypes_and_nesting():
    assert differences({'a': [torch.ones(2)]}, {'a': [torch.ones(2)]}, 'x') == []
    assert differences({'a': torch.ones(2)}, {'a': torch.ones(2, dtype=torch.float64)},
                       'x') == ['x.a differs']
    assert differences({'a': 1}, {'b': 1}, 'x') == ["x: keys ['a', 'b'] in one only"]
    assert differences([1, 2], [1], 'x') == ['x: 2 against 1 items']
