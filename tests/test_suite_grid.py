"""Grids in suites (kdbench/benchmark/suite_grid.py): a method's settings become trial runs
on a held-out validation split, a method run whose config already validates so is the
trial of its own setting, the setting with the best validation metric is chosen and
reported with its test numbers beside the recipe's row; bad grids are named before any
training."""
import csv
import json
import os
import subprocess
import sys

import pytest
from shared_setup import ROOT

from kdbench.benchmark import Suite
from kdbench.benchmark.plots import method_bars
from kdbench.benchmark.suite_grid import chosen_row, short_name
from kdbench.benchmark.sweep_grid import Axis, GridError
from kdbench.benchmark.results import summarize
from kdbench.testing import write_random_teacher

DEMO = os.path.join(ROOT, 'configs', 'demo')
KD = os.path.join(DEMO, 'kd_resnet20_resnet8_fewdigits.py')
# the students' validation: 100 of the images the few-digits reduction leaves out
UNUSED = "validation = dict(split='holdout', source='unused', size=100)\n"


@pytest.fixture(scope='module')
def grid_suite(tmp_path_factory):
    """Few-digits suites with a released random teacher and seed 0: ``paper.py`` (configs
    on the test split; KD's temperature grid 2, 8) and ``honest.py`` (every student
    validates on unused images; KD's grid 2, 4 holds its own value 4)."""
    root = tmp_path_factory.mktemp('grid_suite')
    teacher = write_random_teacher(dict(type='ImageClassifier', net=dict(
        type='resnet20', num_classes=10)), str(root / 'teacher.pth'), seed=1)
    for folder, extra in (('paper', "validation = dict(_delete_=True, split='test')\n"),
                          ('honest', UNUSED)):
        (root / folder).mkdir()
        for name in ('resnet8_fewdigits.py', 'kd_resnet20_resnet8_fewdigits.py'):
            (root / folder / name).write_text(f"_base_ = ['{os.path.join(DEMO, name)}']\n"
                                              + extra)
    spec = ("dataset = 'fewdigits'\nmetric = 'accuracy/top1'\nseeds = [0]\n"
            "pairs = [('resnet20', 'resnet8')]\nmethods = {'KD': 'kd'}\n"
            f"released_teachers = dict(path={teacher!r})\n")
    (root / 'paper.py').write_text(spec + "config_dir = 'paper'\ngrids = {'KD': "
                                   "{'model.methods.kd.temperature': [2.0, 8.0]}}\n")
    (root / 'honest.py').write_text(spec + "config_dir = 'honest'\ngrids = {'KD': "
                                    "{'model.methods.kd.temperature': [2.0, 4.0]}}\n")
    return root


def test_a_grid_adds_trial_runs_on_a_held_out_split(grid_suite, tmp_path):
    suite = Suite(str(grid_suite / 'paper.py'), str(tmp_path))
    names = [run.name for run in suite.runs]
    assert names == ['baseline resnet8', 'KD resnet20 -> resnet8',
                     'KD resnet20 -> resnet8 [temperature=2.0]',
                     'KD resnet20 -> resnet8 [temperature=8.0]']
    trial = suite.runs[2]
    assert suite.run_dir(trial, 0) == os.path.join(
        str(tmp_path), 'kd_resnet20_resnet8_fewdigits', 'temperature_2.0', 'seed_0')
    cfg = suite.config_of(trial, 0)
    assert cfg.model.methods.kd.temperature == 2.0 and cfg.validation.split == 'holdout'
    recipe = suite.config_of(suite.runs[1], 0)
    assert recipe.model.methods.kd.temperature == 4.0 and recipe.validation.split == 'test'
    assert [trials for _, trials in suite.grids] == [suite.runs[2:]]
    for name in ('ident', 'folder'):               # job keys, config files, work dirs
        assert len({getattr(run, name) for run in suite.runs}) == len(suite.runs), name
    command = [line for line in suite.commands() if 'temperature' in line][0]
    assert 'validation.split=holdout' in command and 'model.methods.kd.temperature=2.0' \
        in command


def test_a_method_run_validating_on_a_held_out_split_is_its_own_settings_trial(
        grid_suite, tmp_path):
    suite = Suite(str(grid_suite / 'honest.py'), str(tmp_path))
    assert [run.name for run in suite.runs] == ['baseline resnet8', 'KD resnet20 -> resnet8',
                                                'KD resnet20 -> resnet8 [temperature=2.0]']
    recipe = suite.runs[1]
    assert recipe.setting == 'temperature=4.0' and recipe.kind == 'run'
    assert [t.setting for t in suite.grids[0][1]] == ['temperature=2.0', 'temperature=4.0']
    assert suite.run_dir(recipe, 0) == os.path.join(str(tmp_path),
                                                    'kd_resnet20_resnet8_fewdigits', 'seed_0')


def test_a_grid_may_name_a_method_that_only_a_later_pair_runs(tmp_path):
    (tmp_path / 'resnet8_fewdigits.py').write_text(f"_base_ = ['{DEMO}/resnet8_fewdigits.py']\n")
    (tmp_path / 'kd_p2_fewdigits.py').write_text(f"_base_ = ['{KD}']\n")   # none for pair 1
    (tmp_path / 'later.py').write_text(
        "dataset = 'fewdigits'\nmetric = 'accuracy/top1'\nseeds = [0]\nconfig_dir = '.'\n"
        "pairs = [('resnet20', 'resnet8'), ('resnet20', 'resnet8', 'p2')]\n"
        "released_teachers = dict(path='t.pth')\n"
        "grids = {'KD': {'model.methods.kd.temperature': [2.0, 8.0]}}\n")
    suite = Suite(str(tmp_path / 'later.py'), str(tmp_path / 'w'))
    assert [run.setting for run in suite.runs if run.kind == 'trial'] == [
        'temperature=2.0', 'temperature=8.0']


@pytest.mark.parametrize('grids, message', [
    ("{'AT': {'model.methods.at.loss_weight': [1.0, 2.0]}}", "grids name ['AT']"),
    ("{'KD': [2.0, 4.0]}", 'grids must map'),
    ("{'KD': {'model.methods.kd.temprature': [2.0, 4.0]}}",
     "no key 'model.methods.kd.temprature'; close matches: model.methods.kd.temperature"),
    ("{'KD': {'model.methods.kd.temperature': ['hot', 'cold']}}", "'hot' is not a float"),
    ("{'KD': {'model.methods.kd.temperature': [2.0]}}", '1 distinct value'),
    ("{'KD': {'validation.size': [10, 20]}}", 'sets validation itself'),
])
def test_bad_grids_are_named_before_any_training(grid_suite, tmp_path, grids, message):
    path = tmp_path / 'bad.py'
    path.write_text((grid_suite / 'paper.py').read_text().split('grids =')[0].replace(
        "config_dir = 'paper'", f"config_dir = '{grid_suite / 'paper'}'") + f'grids = {grids}\n')
    with pytest.raises((ValueError, GridError), match=message.replace('[', r'\[')
                       .replace(']', r'\]').replace('(', r'\(')):
        Suite(str(path), str(tmp_path / 'w'))


def _trial(setting, vals, tests, status='done'):
    return dict(name=f'KD [{setting}]', role='KD', teacher='T', student='S', kind='trial',
                setting=setting, status=status, work_dir=setting,
                seeds=[dict(seed=s) for s in range(len(vals))], val=summarize(vals),
                chosen=summarize(tests), best=summarize([]), last=summarize([]))


def test_the_best_mean_validation_is_chosen_ties_to_the_first_and_none_while_unfinished():
    trials = [_trial('t=1', [70.0, 72.0], [60.0, 61.0]),
              _trial('t=2', [72.0, 70.0], [58.0, 59.0]),     # the same mean: the first wins
              _trial('t=3', [69.0, 70.0], [66.0, 66.0])]
    row = chosen_row(trials, 'KD T -> S, chosen on validation')
    assert row['name'] == 'KD T -> S, chosen on validation (t=1)' and row['status'] == 'done'
    assert row['chosen']['mean'] == 60.5 and row['kind'] == 'chosen'
    trials[2] = _trial('t=3', [90.0], [66.0], status='incomplete')
    row = chosen_row(trials, 'KD')
    assert row['chosen']['mean'] is None and row['status'].startswith(
        'pending: 1 of 3 settings unfinished or failed (t=3)')
    assert short_name([Axis('a.w', (1.0,)), Axis('b.w', (2,)), Axis('c.t', (3,))],
                      (1.0, 2, 3)) == 'a.w=1.0,b.w=2,t=3'


def _rows(work_dir):
    with open(work_dir / 'results.csv') as f:
        return {row['run']: row for row in csv.DictReader(f)}


@pytest.mark.parametrize('suite, cohort_of', [('paper.py', 2), ('honest.py', 3)])
def test_a_suite_with_a_grid_reports_the_chosen_setting_beside_the_recipe(
        grid_suite, tmp_path, suite, cohort_of):
    work_dir = tmp_path / 'bench'
    done = subprocess.run(
        [sys.executable, 'tools/benchmark.py', str(grid_suite / suite), '--work-dir',
         str(work_dir), '--cohort', '--cfg-options', 'train_cfg.max_epochs=2',
         'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1'],
        cwd=ROOT, env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1'), capture_output=True,
        text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f'== cohort of {cohort_of} runs' in done.stdout
    rows = _rows(work_dir)
    trials = [r for name, r in rows.items() if r['setting'] and 'chosen on' not in name]
    assert len(trials) == 2 and all(r['val'] and r['chosen'] for r in trials)
    best = max(trials, key=lambda r: float(r['val']))      # the first one on a tie
    best = next(r for r in trials if r['val'] == best['val'])
    chosen = rows[f"KD resnet20 -> resnet8, chosen on validation ({best['setting']})"]
    assert chosen['chosen'] == best['chosen'] and chosen['setting'] == best['setting']
    final = json.loads(open(os.path.join(best['work_dir'], 'final_metrics.json')).read())
    assert final['protocol'] == 'holdout' and final['test']['accuracy/top1'] == float(
        best['chosen'])
    matrix = (work_dir / 'results.md').read_text()
    assert f"| resnet20 -> resnet8, chosen on validation | | | {float(best['chosen']):.2f}†" \
        in matrix
    suite = Suite(str(grid_suite / suite), str(work_dir), {'train_cfg.max_epochs': 2})
    baselines, _, bars = method_bars(suite.collect())
    assert list(bars[('resnet20', 'resnet8')]) == ['KD', 'KD (chosen)']     # no trials
    assert bars[('resnet20', 'resnet8')]['KD (chosen)'] == float(best['chosen'])
    assert baselines['resnet8'] is not None
