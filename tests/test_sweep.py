"""tools/sweep.py: the grid is checked before any training; trials train with
validation.split=holdout, the setting with the best mean validation metric is chosen (ties:
the first in grid order), sweep.csv/sweep.md/sweep.png are written; finished trials are
skipped, failed ones recorded; --final retrains the chosen setting with split 'test'.

The sweep logic is tested with a stand-in trainer that writes ``final_metrics.json`` as
the ``validation`` contract says; the done-when command of issue 29 trains for real."""
import csv
import json
import os
import subprocess
import sys

import pytest
from shared_setup import ROOT

from kdbench.apis.config import load_config
from kdbench.benchmark.sweep import METRICS_FILE, Sweep
from kdbench.benchmark.sweep_grid import GridError, parse_grid
from kdbench.benchmark.sweep_report import by_setting, choose, collect, report
from kdbench.testing import write_random_teacher

AT = os.path.join(ROOT, 'configs', 'demo', 'at_resnet20_resnet8_fewdigits.py')
WEIGHT = 'model.methods.at.loss_weight'
METRIC = 'accuracy/top1'


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
    path = tmp_path_factory.mktemp('sweep_teacher') / 'teacher.pth'
    return write_random_teacher(dict(type='ImageClassifier', net=dict(
        type='resnet20', num_classes=10)), str(path), seed=1)


def _sweep(teacher, work_dir, grid=(f'{WEIGHT}=1,10,100',), seeds=(0,), **options):
    return Sweep(AT, list(grid), list(seeds), str(work_dir),
                 dict({'model.teacher_ckpt': teacher}, **options))


class StandIn:
    """Trains nothing: writes the trial's ``final_metrics.json`` with val = ``vals[loss
    weight] + seed`` and test = val - 5; raises for the weights in ``fail``."""

    def __init__(self, vals, fail=()):
        self.vals, self.fail, self.trained = vals, set(fail), []

    def __call__(self, cfg, name):
        weight = cfg.model.methods.at.loss_weight
        self.trained.append((name, dict(cfg.validation)))
        if weight in self.fail:
            raise RuntimeError(f'diverged at {weight}')
        val = self.vals[weight] + cfg.randomness.seed
        split = cfg.validation['split']
        with open(os.path.join(cfg.work_dir, METRICS_FILE), 'w') as f:
            json.dump(dict(protocol=split, val={METRIC: val if split == 'holdout' else val - 5},
                           test={METRIC: val - 5}, val_metric=METRIC, epoch=2), f)


def _csv(work_dir):
    with open(os.path.join(work_dir, 'sweep.csv')) as f:
        return list(csv.DictReader(f))


def _run(sweep, train_fn, final=False, **kwargs):
    """What tools/sweep.py does: train, collect, choose, (final), report."""
    sweep.run(sweep.trials, train_fn, log=lambda line: None, **kwargs)
    trials = collect(sweep, sweep.trials)
    chosen, why = choose(by_setting(sweep, trials))
    finals = []
    if final and chosen is not None:
        sweep.run(sweep.final_trials(chosen.setting), train_fn, log=lambda line: None)
        finals = collect(sweep, sweep.final_trials(chosen.setting))
    return report(sweep, trials, finals, chosen, why), chosen


# ------------------------------------------------------------------------------ the grid
@pytest.mark.parametrize('spec, message', [
    ('model.methods.at.loss_weigth=1,10', r"has no key 'model.methods.at.loss_weigth'; "
     r'close matches: model.methods.at.loss_weight'),
    ('model.at.loss_weight=1,10', 'close matches: model.methods.at.loss_weight'),
    (f'{WEIGHT}=1,ten', r"value 'ten' is not a float .*loss_weight = 1000.0"),
    ('model.methods.at.p=1.5,2', r"value '1.5' is not an int"),
    (f'{WEIGHT}=1', r'1 distinct value .* --cfg-options model.methods.at.loss_weight=1'),
    (f'{WEIGHT}=1,10,1.0', r'repeat one value'),
    (f'{WEIGHT}=1,', 'expected KEY=V1,V2'),
    (WEIGHT, 'expected KEY=V1,V2'),
    ('model.methods.at=1,2', r'\(ConfigDict\); only keys with an int, float, bool or str'),
    ('validation.size=10,20', 'the sweep sets validation itself'),
    ('randomness.seed=0,1', 'use --seeds'),
])
def test_bad_grid_is_named(spec, message):
    with pytest.raises(GridError, match=message):
        parse_grid(load_config(AT), [spec], {})


def test_grid_values_take_the_configs_types():
    cfg = load_config(AT)
    axes = parse_grid(cfg, [f'{WEIGHT}=1,10', 'model.methods.at.p=1,2',
                            'model.student.net.type=resnet8,resnet14',
                            'train_dataloader.sampler.shuffle=true,False'], {})
    assert [a.values for a in axes] == [(1.0, 10.0), (1, 2), ('resnet8', 'resnet14'),
                                        (True, False)]
    assert [type(v) for a in axes for v in a.values[:1]] == [float, int, str, bool]
    assert axes[0].texts == ('1.0', '10.0')
    with pytest.raises(GridError, match='given twice'):
        parse_grid(cfg, [f'{WEIGHT}=1,10', f'{WEIGHT}=2,3'], {})
    with pytest.raises(GridError, match='also in --cfg-options'):
        parse_grid(cfg, [f'{WEIGHT}=1,10'], {WEIGHT: 3.0})
    with pytest.raises(GridError, match='at least one --grid'):
        parse_grid(cfg, [], {})


def test_sweep_refuses_seeds_and_split_options(teacher, tmp_path):
    with pytest.raises(ValueError, match='distinct seeds'):
        _sweep(teacher, tmp_path, seeds=(0, 0))
    with pytest.raises(ValueError, match='validation.split: the sweep'):
        _sweep(teacher, tmp_path, **{'validation.split': 'test'})
    with pytest.raises(ValueError, match='give the seeds with --seeds'):
        _sweep(teacher, tmp_path, **{'randomness.seed': 3})
    with pytest.raises(ValueError, match='validation.size must be a whole number'):
        _sweep(teacher, tmp_path, **{'validation.size': -1})
    with pytest.raises(FileNotFoundError, match='model.teacher_ckpt: file not found'):
        _sweep(str(tmp_path / 'none.pth'), tmp_path)
    with pytest.raises(FileNotFoundError, match='file not found: .*none.pth'):    # 2nd setting
        Sweep(AT, [f'model.teacher_ckpt={teacher},{tmp_path / "none.pth"}'], [0],
              str(tmp_path), {})
    assert not os.listdir(tmp_path)


def test_cli_refuses_a_bad_grid_before_training(tmp_path):
    work_dir = tmp_path / 'w'
    done = subprocess.run(
        [sys.executable, 'tools/sweep.py', AT, '--grid', 'model.methods.at.weight=1,10',
         '--work-dir', str(work_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1'))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "Nothing trained: --grid model.methods.at.weight: ")
    assert 'close matches: model.methods.at.loss_weight' in done.stderr
    assert not work_dir.exists()


def test_cli_records_failed_trials_and_exits_1(teacher, tmp_path):
    work_dir = tmp_path / 'w'
    done = subprocess.run(
        [sys.executable, 'tools/sweep.py', AT, '--grid', 'model.methods.at.type=NoA,NoB',
         '--cfg-options', f'model.teacher_ckpt={teacher}', '--work-dir', str(work_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1'))
    assert done.returncode == 1
    failures = [work_dir / f'model.methods.at.type={name}' / 'seed0' / 'failure.json'
                for name in ('NoA', 'NoB')]
    assert done.stderr.strip().splitlines()[-1] == (
        f'2 trial(s) did not finish: model.methods.at.type=NoA seed 0: {failures[0]}; '
        f'model.methods.at.type=NoB seed 0: {failures[1]}')
    assert 'NoB' in json.loads(failures[1].read_text())['error']
    assert [(r['status'], r['chosen']) for r in _csv(work_dir)] == [('failed', '0')] * 2
    assert 'Not chosen: 2 setting(s) have unfinished or failed trials' in \
        (work_dir / 'sweep.md').read_text()


def test_a_trial_stopped_part_way_continues_from_its_checkpoint(teacher, tmp_path):
    sweep = _sweep(teacher, tmp_path)
    stopped = sweep.trials[1]
    os.makedirs(stopped.work_dir)
    with open(os.path.join(stopped.work_dir, 'last_checkpoint'), 'w') as f:
        f.write(os.path.join(stopped.work_dir, 'epoch_1.pth'))
    assert sweep.status(stopped) == 'incomplete'
    resumed = []
    train = StandIn({1.0: 50.0, 10.0: 60.0, 100.0: 55.0})
    sweep.run(sweep.trials, lambda cfg, name: (resumed.append((cfg.resume, cfg.load_from)),
                                               train(cfg, name)), log=lambda line: None)
    assert resumed == [(False, None), (True, os.path.join(stopped.work_dir, 'epoch_1.pth')),
                       (False, None)]


# ----------------------------------------------------------------- choosing and tables
def test_chooses_best_mean_writes_tables_and_skips_finished(teacher, tmp_path):
    sweep = _sweep(teacher, tmp_path, grid=(f'{WEIGHT}=1,10,100', 'model.methods.at.p=1,2'),
                   seeds=(0, 1), **{'validation.size': 20})
    train = StandIn({1.0: 50.0, 10.0: 60.0, 100.0: 55.0})
    text, chosen = _run(sweep, train)
    assert chosen.setting == (10.0, 1)           # the best mean; p=2 ties it, comes later
    assert len(train.trained) == 12
    assert all(v == dict(split='holdout', source='unused', size=20)     # the config's source
               for _, v in train.trained)
    rows = _csv(tmp_path)
    assert len(rows) == 12 and {r['kind'] for r in rows} == {'trial'}
    picked = [r for r in rows if r['chosen'] == '1']
    assert [(r[WEIGHT], r['model.methods.at.p'], r['seed']) for r in picked] == [
        ('10.0', '1', '0'), ('10.0', '1', '1')]
    assert [(float(r['val']), float(r['test'])) for r in picked] == [(60.0, 55.0), (61.0, 56.0)]
    assert rows[0]['work_dir'] == str(tmp_path / f'{WEIGHT}=1.0,model.methods.at.p=1' / 'seed0')
    assert f'Chosen: **{WEIGHT}=10.0, model.methods.at.p=1**' in text
    assert '| 10.0 | 1 | 2/2 | 60.50 ± 0.71 | 55.50 ± 0.71 | yes |' in text
    assert (tmp_path / 'sweep.md').read_text() == text
    assert (tmp_path / 'sweep.png').stat().st_size > 0

    # The same sweep again: nothing trains, the same tables.
    again, lines = StandIn({}), []
    sweep.run(sweep.trials, again, log=lines.append)
    assert again.trained == [] and sum('finished, skipped' in x for x in lines) == 12


def test_failed_trial_is_recorded_others_go_on_and_rerun_trains_only_it(teacher, tmp_path):
    sweep = _sweep(teacher, tmp_path)
    text, chosen = _run(sweep, StandIn({1.0: 50.0, 100.0: 55.0}, fail={10.0}))
    assert chosen is None and 'Not chosen: 1 setting(s) have unfinished or failed' in text
    failure = tmp_path / f'{WEIGHT}=10.0' / 'seed0' / 'failure.json'
    assert 'RuntimeError: diverged at 10.0' in json.loads(failure.read_text())['error']
    rows = _csv(tmp_path)
    assert [r['status'] for r in rows] == ['done', 'failed', 'done']
    assert 'diverged at 10.0' in rows[1]['error'] and rows[1]['val'] == ''
    assert all(r['chosen'] == '0' for r in rows)

    retry = StandIn({10.0: 40.0})
    text, chosen = _run(sweep, retry)
    assert [name for name, _ in retry.trained] == [f'{WEIGHT}=10.0 seed 0']
    assert not failure.exists() and chosen.setting == (100.0,)
    assert [r['chosen'] for r in _csv(tmp_path)] == ['0', '0', '1']


def test_ties_go_to_the_first_setting_in_grid_order(teacher, tmp_path):
    _, chosen = _run(_sweep(teacher, tmp_path), StandIn({1.0: 50.0, 10.0: 70.0, 100.0: 70.0}))
    assert chosen.setting == (10.0,)


def test_a_run_without_final_metrics_or_of_another_protocol_fails(teacher, tmp_path):
    def train(cfg, name):
        weight = cfg.model.methods.at.loss_weight
        if weight == 1.0:                    # writes nothing
            return
        if weight == 10.0:                   # as if the split were ignored
            cfg.validation = dict(split='test')
        StandIn({10.0: 60.0, 100.0: 55.0})(cfg, name)

    _run(_sweep(teacher, tmp_path), train)
    rows = _csv(tmp_path)
    assert [r['status'] for r in rows] == ['failed', 'failed', 'done']
    assert f'without writing {METRICS_FILE}' in rows[0]['error']
    assert "protocol 'test', but the trial trained with validation.split='holdout'" in \
        rows[1]['error']


def test_final_retrains_the_chosen_setting_on_the_test_protocol(teacher, tmp_path):
    train = StandIn({1.0: 50.0, 10.0: 60.0, 100.0: 55.0})
    sweep = _sweep(teacher, tmp_path, seeds=(0, 1))
    text, chosen = _run(sweep, train, final=True)
    final = sweep.config_of(sweep.final_trials(chosen.setting)[0])
    assert final.default_hooks.checkpoint.save_best is None        # reports its last epoch
    assert sweep.config_of(sweep.trials[0]).default_hooks.checkpoint.save_best == 'auto'
    finals = [(name, v) for name, v in train.trained if name.endswith('(final)')]
    assert finals == [(f'{WEIGHT}=10.0 seed {s} (final)', dict(split='test')) for s in (0, 1)]
    rows = [r for r in _csv(tmp_path) if r['kind'] == 'final']
    assert [(r[WEIGHT], r['seed'], r['val'], float(r['test']), r['chosen']) for r in rows] \
        == [('10.0', '0', '', 55.0, '1'), ('10.0', '1', '', 56.0, '1')]
    assert rows[0]['work_dir'] == str(tmp_path / 'final' / f'{WEIGHT}=10.0' / 'seed0')
    assert 'its last epoch on the test split: accuracy/top1 55.50 ± 0.71 (2/2 seeds done)' in text


def test_cohort_trains_trials_of_one_seed_together(teacher, tmp_path):
    train, cohorts = StandIn({1.0: 50.0, 10.0: 60.0, 100.0: 55.0}), []

    def train_cohort(cfgs, names):
        cohorts.append(list(names))
        for cfg in cfgs:          # read back from its own file, the trial's config
            trial = next(t for t in sweep.trials if t.work_dir == cfg.work_dir)
            assert os.path.basename(cfg.filename) == \
                f'{os.path.basename(os.path.dirname(trial.work_dir))}_seed{trial.seed}.py'
            assert _plain(cfg) == _plain(sweep.config_of(trial))
        errors = []
        for cfg, name in zip(cfgs, names):
            try:
                train(cfg, name)
                errors.append(None)
            except RuntimeError as err:
                errors.append(err)
        return errors

    train.fail = {100.0}
    sweep = _sweep(teacher, tmp_path, seeds=(0, 1))
    sweep.run(sweep.trials, train, log=lambda line: None, train_cohort_fn=train_cohort)
    assert cohorts == [[f'{WEIGHT}={w} seed {s}' for w in ('1.0', '10.0', '100.0')]
                       for s in (0, 1)]
    assert [sweep.status(t) for t in sweep.trials] == ['done', 'done'] * 2 + ['failed'] * 2


def _plain(cfg):
    return {k: v for k, v in cfg.to_dict().items() if k != 'experiment_name'}


# ------------------------------------------------------------- the done-when
def test_done_when_command_on_few_digits(teacher, tmp_path):
    """Issue 29's command, trained for real (2 epochs): two rows, val and test, one
    chosen; the same command again retrains nothing."""
    work_dir = tmp_path / 'W'
    command = [sys.executable, 'tools/sweep.py', AT, '--grid', f'{WEIGHT}=1,10', '--seeds',
               '0', '--cfg-options', f'model.teacher_ckpt={teacher}', 'train_cfg.max_epochs=2',
               '--work-dir', str(work_dir)]
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1')
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = _csv(work_dir)
    assert len(rows) == 2 and all(float(r['val']) >= 0 and float(r['test']) >= 0
                                  for r in rows)
    assert sorted(r['chosen'] for r in rows) == ['0', '1']
    checkpoint = work_dir / f'{WEIGHT}=1.0' / 'seed0' / 'epoch_2.pth'
    mtime = checkpoint.stat().st_mtime
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=900)
    assert again.returncode == 0 and again.stdout.count('finished, skipped') == 2
    assert checkpoint.stat().st_mtime == mtime and _csv(work_dir) == rows
