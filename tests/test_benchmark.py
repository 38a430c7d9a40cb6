"""The benchmark runner on a tiny suite (digits, 1-epoch runs): table contents against
the reference file, a run that fails on purpose is recorded, the suite goes on and the
tool exits 1 naming it, finished runs are skipped, cluster commands, plots and the
environment record; ``--cohort`` gives the same tables and weights, ``--dry-run`` its
groups."""
import json
import os
import subprocess
import sys

import pytest
import torch
from shared_setup import ROOT, write_digits_suite_configs, write_fewdigits_cohort_suite

from kdbench.benchmark import Suite
from kdbench.benchmark.compare import checkpoints, compare_suite_dirs
from kdbench.benchmark.results import (delta_to_baseline, load_reference, markdown_table,
                                       matrix_table)
from kdbench.utils.checkpoint import load_local_checkpoint

DEMO = os.path.join(ROOT, 'configs', 'demo')
SHORT = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1']


@pytest.fixture(scope='module')
def suite_dir(tmp_path_factory):
    """A suite of the demo pair with KD and a method whose config is broken on purpose,
    and a reference file with a number for the baseline and for KD."""
    root = tmp_path_factory.mktemp('suite')
    write_digits_suite_configs(root)
    (root / 'reference.csv').write_text(
        '# test reference\n'
        'dataset,teacher,student,method,metric,value,source,table,protocol\n'
        'digits,,resnet8,baseline,top1,50.0,Test paper,Table 1,last epoch\n'
        'digits,resnet20,resnet8,KD,top1,60.0,Test paper,Table 2,best epoch\n')
    (root / 'tiny.py').write_text(
        "dataset = 'digits'\nconfig_dir = 'configs'\nmetric = 'accuracy/top1'\n"
        "seeds = [0]\npairs = [('resnet20', 'resnet8')]\n"
        "methods = {'KD': 'kd', 'Broken': 'broken'}\nreference = 'reference.csv'\n")
    (root / 'tiny_kd.py').write_text((root / 'tiny.py').read_text().replace(
        ", 'Broken': 'broken'", ''))                    # the same suite without the broken run
    return root


def _benchmark(suite, work_dir, *extra, returncode=0):
    """stdout of tools/benchmark.py, which must exit with ``returncode``; with
    ``returncode`` 1, stdout and stderr's last line."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1')
    done = subprocess.run([sys.executable, 'tools/benchmark.py', str(suite), '--work-dir',
                           str(work_dir), *extra, '--cfg-options', *SHORT], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == returncode, done.stdout[-3000:] + done.stderr[-3000:]
    return (done.stdout, done.stderr.strip().splitlines()[-1]) if returncode else done.stdout


def test_suite_runs_records_failure_reports_and_skips_finished(suite_dir, tmp_path):
    work_dir = tmp_path / 'bench'
    out, last = _benchmark(suite_dir / 'tiny.py', work_dir, returncode=1)
    assert 'FAILED' in out and 'NoSuchMethod' in out          # the broken run, recorded
    broken = work_dir / 'broken_resnet20_resnet8_digits' / 'seed_0' / 'failure.json'
    assert last == f'1 run(s) failed: Broken resnet20 -> resnet8 seed 0: {broken}'
    rows = {line.split(' | ')[0].lstrip('| '): line.split(' | ')
            for line in (work_dir / 'results.md').read_text().splitlines()
            if line.startswith('| ') and ' | ' in line and not line.startswith('| run')}
    kd = rows['KD resnet20 -> resnet8']
    assert kd[5] == '60.00' and 'Test paper Table 2 (best epoch)' in kd[7]
    assert float(kd[6]) == pytest.approx(float(kd[2]) - 60.0, abs=0.011)   # Δ on best
    baseline = rows['baseline resnet8']
    assert float(baseline[6]) == pytest.approx(float(baseline[3]) - 50.0, abs=0.011)  # last
    assert rows['Broken resnet20 -> resnet8'][-1].startswith('failed: ')
    assert 'NoSuchMethod' in rows['Broken resnet20 -> resnet8'][-1]
    with open(work_dir / 'results.csv') as f:
        assert len(f.read().strip().splitlines()) == 1 + 4          # header + 4 runs x 1 seed
    assert (work_dir / 'methods.png').stat().st_size > 0
    kd_dir = work_dir / 'kd_resnet20_resnet8_digits' / 'seed_0'
    assert (kd_dir / 'curves.png').stat().st_size > 0
    env = json.loads(next(kd_dir.glob('*/environment.json')).read_text())
    assert env['seed'] == 0 and env['packages']['torch'] and env['git_commit']
    assert env['hardware']['cpu_count'] >= 1
    timing = json.loads((work_dir / 'suite_time.json').read_text())   # the pass's CPU time
    assert timing['cpu_seconds'] > 0 and timing['wall_seconds'] > 0 and not timing['cohort']
    assert timing['cpu_seconds'] == pytest.approx(timing['user_seconds'] + timing['sys_seconds'])
    assert timing['trained'] == ['teacher resnet20 seed 0', 'baseline resnet8 seed 0',
                                 'KD resnet20 -> resnet8 seed 0',
                                 'Broken resnet20 -> resnet8 seed 0']
    assert f"CPU time {timing['cpu_seconds']:.1f} s" in out and '\nThis command: CPU time ' in out

    # Second invocation: finished runs are skipped, the failed one is tried again.
    checkpoint = kd_dir / 'epoch_1.pth'
    mtime = checkpoint.stat().st_mtime
    out, last = _benchmark(suite_dir / 'tiny.py', work_dir, returncode=1)
    assert out.count('finished, skipped') == 3 and 'FAILED' in out
    assert checkpoint.stat().st_mtime == mtime
    assert 'Broken resnet20 -> resnet8 seed 0' in last
    timing = json.loads((work_dir / 'suite_time.json').read_text())
    assert timing['trained'] == ['Broken resnet20 -> resnet8 seed 0']
    # Collecting only the runs that finished: exit 0; with the failed run: exit 1.
    assert 'KD resnet20 -> resnet8' in _benchmark(suite_dir / 'tiny_kd.py', work_dir,
                                                  '--collect')
    _benchmark(suite_dir / 'tiny.py', work_dir, '--collect', returncode=1)
    assert json.loads((work_dir / 'suite_time.json').read_text()) == timing   # not rewritten


def test_cluster_commands_list_unfinished_runs_teachers_first(suite_dir, tmp_path):
    suite = Suite(str(suite_dir / 'tiny.py'), str(tmp_path / 'bench'))
    lines = suite.commands(gpus=4)
    assert lines[0].startswith('# stage 1') and 'resnet20_digits.py 4' in lines[1]
    students = lines[lines.index(next(x for x in lines if x.startswith('# stage 2'))) + 1:]
    assert len(students) == 3 and all('--seed 0' in x for x in students)
    kd = next(x for x in students if 'kd_resnet20' in x)
    assert 'model.teacher_ckpt=' + str(tmp_path / 'bench' / 'resnet20_digits' / 'seed_0'
                                       / 'epoch_30.pth') in kd
    assert suite.commands(partition='gpu')[1].startswith('GPUS=8 bash tools/slurm_train.sh gpu')


def test_parallel_suites_train_side_by_side_and_report_in_order(suite_dir, tmp_path):
    spec = ("dataset = 'digits'\nconfig_dir = 'configs'\nmetric = 'accuracy/top1'\n"
            "pairs = [('resnet20', 'resnet8')]\nmethods = {}\n"
            "released_teachers = dict(path='t')\n")
    for name, seed in (('first.py', 0), ('second.py', 1)):
        (suite_dir / name).write_text(spec + f'seeds = [{seed}]\n')
    (suite_dir / 'both.py').write_text("suites = ['first.py', 'second.py']\n")
    out = _benchmark(suite_dir / 'both.py', tmp_path, '--parallel-suites', '2')
    assert out.index('first.py: accuracy/top1') < out.index('second.py: accuracy/top1')
    for name, seed in (('first', 0), ('second', 1)):
        with open(tmp_path / name / 'results.csv') as f:
            rows = f.read().splitlines()[1:]
        assert len(rows) == 1 and f'baseline resnet8,baseline,,resnet8,{seed},' in rows[0]
        assert ',done,' in rows[0]


def test_bad_suites_and_reference_files_are_named(tmp_path, suite_dir):
    (tmp_path / 'missing.py').write_text("dataset = 'digits'\n")
    with pytest.raises(KeyError, match=r"lacks \['config_dir', 'metric', 'pairs'"):
        Suite(str(tmp_path / 'missing.py'), str(tmp_path))
    (tmp_path / 'absent.py').write_text(
        (suite_dir / 'tiny.py').read_text().replace("'kd'", "'nokd'")
        .replace("config_dir = 'configs'", f"config_dir = '{suite_dir / 'configs'}'")
        .replace("reference = 'reference.csv'", ''))
    with pytest.raises(FileNotFoundError, match='nokd_resnet20_resnet8_digits.py'):
        Suite(str(tmp_path / 'absent.py'), str(tmp_path))
    (tmp_path / 'ref.csv').write_text('dataset,teacher,student,method,metric,value,source,'
                                      'table,protocol\ndigits,a,b,KD,top1,1.0,,T1,best\n')
    with pytest.raises(ValueError, match='row 2.*a source'):
        load_reference(str(tmp_path / 'ref.csv'))


def test_matrix_cells_follow_each_papers_protocol():
    def row(role, teacher, student, best, last, protocol=None):
        paper = dict(value='70.0', protocol=protocol) if protocol else None
        return dict(role=role, teacher=teacher, student=student, paper=paper,
                    best=dict(mean=best), last=dict(mean=last))

    table = matrix_table([row('teacher', 'T', '', 80.0, 79.0),
                          row('baseline', '', 'S', 70.5, 70.1, 'last epoch'),
                          row('KD', 'T', 'S', 72.0, 71.0, 'best epoch, mean of 5')])
    header, _, line = table.splitlines()
    assert header == '| teacher -> student | teacher | student | KD |'
    assert line == '| T -> S | 80.00 | 70.10 (70.00) | 72.00 (70.00) |'


def test_difference_to_the_baseline_carries_its_spread_over_seeds():
    method, base = dict(mean=92.0, std=3.0, n=2), dict(mean=90.0, std=4.0, n=2)
    assert delta_to_baseline(method, base) == '+2.00 ± 3.54'     # sqrt(9/2 + 16/2)
    assert delta_to_baseline(dict(mean=88.5, std=None, n=1), base) == '-1.50'
    assert delta_to_baseline(method, None) == '-'
    assert delta_to_baseline(dict(mean=None, std=None, n=0), base) == '-'


def test_the_run_table_counts_the_seeds_done_of_each_run():
    def row(name, done, seeds):
        values = [70.0 + i for i in range(done)]
        summary = dict(mean=sum(values) / done if done else None, std=None, n=done)
        return dict(name=name, role='KD', teacher='T', student='S', paper=None,
                    status='done' if done == seeds else 'pending', work_dir='w',
                    seeds=[dict(seed=i) for i in range(seeds)], best=summary, last=summary)

    header, _, started, finished = markdown_table([row('a', 0, 1), row('b', 2, 2)]).splitlines()
    assert header.startswith('| run | seeds done | best |')
    assert started.startswith('| a | 0/1 | - |') and finished.startswith('| b | 2/2 | 70.50 |')


# ------------------------------------------------------------------ --cohort (issue 28)
# The demo's few-digits students load with one worker (configs/demo/resnet8_fewdigits.py).
COHORT_OPTIONS = ['randomness.deterministic=True']


@pytest.fixture(scope='module')
def cohort_suite(tmp_path_factory):
    """Few-digits suites ``cohort.py`` and ``apart.py`` (shared_setup)."""
    root = tmp_path_factory.mktemp('cohort_suite')
    write_fewdigits_cohort_suite(root)
    return root


def _csv_rows(work_dir):
    """results.csv's rows, work dirs relative to ``work_dir``."""
    with open(work_dir / 'results.csv') as f:
        return [line.replace(str(work_dir), '<work dir>') for line in f.read().splitlines()]


def test_cohort_runs_give_the_results_of_the_runs_alone(cohort_suite, tmp_path):
    alone, cohort = tmp_path / 'alone', tmp_path / 'cohort'
    _benchmark(cohort_suite / 'cohort.py', alone, '--cfg-options', *COHORT_OPTIONS,
               returncode=1)
    out, last = _benchmark(cohort_suite / 'cohort.py', cohort, '--cohort', '--cfg-options',
                           *COHORT_OPTIONS, returncode=1)
    assert '== cohort of 3 runs: baseline resnet8 seed 0, KD resnet20 -> resnet8 seed 0, ' \
           'Broken resnet20 -> resnet8 seed 0' in out
    assert 'FAILED (Broken resnet20 -> resnet8 seed 0): ' in out and 'NoSuchMethod' in out
    broken = cohort / 'broken_resnet20_resnet8_fewdigits' / 'seed_0' / 'failure.json'
    assert last == f'1 run(s) failed: Broken resnet20 -> resnet8 seed 0: {broken}'
    assert 'NoSuchMethod' in json.loads(broken.read_text())['error']
    rows = _csv_rows(cohort)
    assert rows == _csv_rows(alone) and len(rows) == 1 + 3
    assert sum(',done,' in row for row in rows) == 2
    for key in ('resnet8_fewdigits', 'kd_resnet20_resnet8_fewdigits'):
        weights = [load_local_checkpoint(str(work_dir / key / 'seed_0' / 'epoch_1.pth'))
                   ['state_dict'] for work_dir in (alone, cohort)]
        assert weights[0].keys() == weights[1].keys()
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), key
    timing = json.loads((cohort / 'kd_resnet20_resnet8_fewdigits' / 'seed_0'
                         / 'run_time.json').read_text())
    assert timing['cohort']['runs'][1] == 'KD resnet20 -> resnet8 seed 0'
    assert timing['seconds'] == pytest.approx(timing['cohort']['seconds'] / 3)
    suite_time = json.loads((cohort / 'suite_time.json').read_text())
    assert suite_time['cohort'] and suite_time['cpu_seconds'] > 0


def test_cohort_dry_run_names_the_groups_and_what_kept_runs_apart(cohort_suite, tmp_path):
    out = _benchmark(cohort_suite / 'apart.py', tmp_path / 'bench', '--cohort', '--dry-run')
    lines = out.splitlines()
    assert lines[1:3] == ['teachers first, alone:',
                          f"  teacher resnet20 seed 0: {cohort_suite / 'configs'}"
                          '/resnet20_fewdigits.py']
    groups = [line for line in lines if line.startswith('cohort ')]
    assert groups == ['cohort 1: 2 runs', 'cohort 2: 2 runs', 'cohort 3: 1 run (trained alone)',
                      'cohort 4: 1 run (trained alone)']
    assert '  kept apart from cohort 1: train_dataloader.batch_size differs from baseline ' \
           'resnet8 seed 0' in lines
    assert '  kept apart from cohort 1: randomness.seed differs from baseline resnet8 ' \
           'seed 0' in lines
    assert not (tmp_path / 'bench').exists()


@pytest.mark.slow
def test_the_demo_cls_suite_with_cohorts_equals_the_suite_without(tmp_path):
    """The done-when check of issue 28 at 1 epoch (``SHORT``): the demo's classification
    suite as `make demo` runs it, with and without ``--cohort``, gives the same
    results.csv rows and bitwise the same checkpoints, teacher included."""
    suite = os.path.join(ROOT, 'configs', 'suites', 'demo_cls.py')
    alone, cohort = tmp_path / 'alone', tmp_path / 'cohort'
    _benchmark(suite, alone)
    out = _benchmark(suite, cohort, '--cohort')
    assert out.count('== cohort of 5 runs: ') == 2                  # one per seed
    assert compare_suite_dirs(str(alone), str(cohort)) == []
    finals = [name for name in checkpoints(str(cohort)) if os.path.basename(name) == 'epoch_1.pth']
    assert len(finals) == 1 + 2 * 5                                 # teacher + 10 students
