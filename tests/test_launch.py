"""``tools/benchmark.py --launcher local``: suites through submitit's local executor (real
processes). A suite finishes (teacher first), a failing run is shown with its log and
retried with ``--retry-failed``, a restarted runner re-attaches to its jobs, and a job
interrupted after its first checkpoint is requeued and ends with the weights of an
uninterrupted run. Also: the commands, Slurm parameters, status table and bad input."""
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from shared_setup import ROOT, write_digits_suite_configs, write_fewdigits_cohort_suite

from kdbench.benchmark import Suite
from kdbench.benchmark.compare import CHECKPOINT_KEYS, differences
from kdbench.benchmark.launch import (JOBS_FILE, LaunchOptions, SuiteLauncher, job_alive,
                                      log_tail, make_executor, member_failure,
                                      slurm_parameters)
from kdbench.benchmark.results import metric_history
from kdbench.benchmark.train_job import FAILED_MARK, TrainJob, cohort_command, train_command
from kdbench.utils.checkpoint import load_local_checkpoint

DEMO = os.path.join(ROOT, 'configs', 'demo')
SHORT = ['train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
# 3 epochs of 85 iterations, a checkpoint and a validation after each, deterministic (as
# tests/test_exact_resume.py); the requeue signal comes during or right after epoch 1's
# validation (kdbench/hooks/resume_validation.py)
EXACT = ['train_cfg.max_epochs=3', 'train_cfg.val_interval=1',
         'train_dataloader.batch_size=16', 'randomness.deterministic=True']


def _env():
    return dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1', OMP_NUM_THREADS='1', PYTHONPATH=ROOT)


def _tool(suite, work_dir, *extra, options=SHORT):
    return [sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py'), str(suite),
            '--work-dir', str(work_dir), '--launcher', 'local', *extra,
            '--cfg-options', *options]


def _benchmark(suite, work_dir, *extra, returncode=0, options=SHORT):
    done = subprocess.run(_tool(suite, work_dir, *extra, options=options), cwd=ROOT,
                          env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == returncode, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _jobs(work_dir):
    path = work_dir / 'submitit' / JOBS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def _job_folders(work_dir):
    return sorted(p.name for p in (work_dir / 'submitit').iterdir() if p.name.isdigit())


def _csv_states(work_dir):
    with open(work_dir / 'results.csv') as f:
        rows = f.read().splitlines()[1:]
    return {(row.split(',')[0], row.split(',')[4]): row.split(',')[9] for row in rows}


@pytest.fixture(scope='module')
def suite_dir(tmp_path_factory):
    """``tiny.py``: teacher, baseline, KD and a method broken on purpose (digits, seed 0);
    ``alone.py``: the baseline alone."""
    root = tmp_path_factory.mktemp('launch_suite')
    write_digits_suite_configs(root)
    spec = ("dataset = 'digits'\nconfig_dir = 'configs'\nmetric = 'accuracy/top1'\n"
            "seeds = [0]\npairs = [('resnet20', 'resnet8')]\n")
    (root / 'tiny.py').write_text(spec + "methods = {'KD': 'kd', 'Broken': 'broken'}\n")
    (root / 'alone.py').write_text(spec + "methods = {}\nreleased_teachers = dict(path='t')\n")
    return root


@pytest.mark.slow   # five training processes (about 1 min each on a loaded 2-core CPU)
def test_suite_runs_reattaches_shows_failures_and_retries_them(suite_dir, tmp_path):
    work_dir = tmp_path / 'bench'
    first = subprocess.Popen(_tool(suite_dir / 'tiny.py', work_dir), cwd=ROOT, env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while 'resnet20_digits/seed_0' not in _jobs(work_dir):    # the teacher, alone first
        assert first.poll() is None and time.time() < deadline, 'no job submitted'
        time.sleep(0.2)
    assert list(_jobs(work_dir)) == ['resnet20_digits/seed_0']
    first.kill()                    # the runner only: its job goes on
    first.wait()
    teacher = _jobs(work_dir)['resnet20_digits/seed_0']['job_id']

    out = _benchmark(suite_dir / 'tiny.py', work_dir, returncode=1)
    assert f're-attached to 1 job(s) still queued or running: {teacher}' in out
    assert _jobs(work_dir)['resnet20_digits/seed_0']['job_id'] == teacher
    assert len(_job_folders(work_dir)) == 4                 # one submission per run
    assert _csv_states(work_dir) == {('teacher resnet20', '0'): 'done',
                                     ('baseline resnet8', '0'): 'done',
                                     ('KD resnet20 -> resnet8', '0'): 'done',
                                     ('Broken resnet20 -> resnet8', '0'): 'failed'}
    broken = work_dir / 'broken_resnet20_resnet8_digits' / 'seed_0'
    log = _jobs(work_dir)['broken_resnet20_resnet8_digits/seed_0']['folder']
    assert 'FAILED: Broken resnet20 -> resnet8 seed 0' in out and 'NoSuchMethod' in out
    assert f'whole log: {log}' in out and out.strip().splitlines()[-1].endswith(
        f"Broken resnet20 -> resnet8 seed 0: {broken / 'failure.json'}")
    failure = json.loads((broken / 'failure.json').read_text())
    assert 'NoSuchMethod' in failure['error'] and failure['log'].startswith(log)
    kd = work_dir / 'kd_resnet20_resnet8_digits' / 'seed_0'
    assert json.loads((kd / 'run_time.json').read_text())['seconds'] > 0
    assert 'KD resnet20 -> resnet8' in (work_dir / 'results.md').read_text()

    # Without --retry-failed nothing is submitted again; with it, only the failed run.
    out = _benchmark(suite_dir / 'tiny.py', work_dir, returncode=1)
    assert 'submitted' not in out and len(_job_folders(work_dir)) == 4
    (suite_dir / 'configs' / 'broken_resnet20_resnet8_digits.py').write_text(
        f"_base_ = ['{os.path.join(DEMO, 'kd_resnet20_resnet8_digits.py')}']\n")
    out = _benchmark(suite_dir / 'tiny.py', work_dir, '--retry-failed')
    assert 'submitted 1 job(s): Broken resnet20 -> resnet8 seed 0' in out
    assert set(_csv_states(work_dir).values()) == {'done'} and len(_job_folders(work_dir)) == 5


# The few-digits students (one loader worker: they can train as a cohort), 2 short epochs.
COHORT = ['train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
          'default_hooks.checkpoint.interval=1', 'randomness.deterministic=True']


@pytest.mark.slow   # three single jobs, then a cohort job and a retry (about 2 min)
def test_a_cohort_is_one_job_ending_as_single_jobs_and_its_failed_member_is_retried(
        tmp_path):
    root, alone, cohort = tmp_path / 'suite', tmp_path / 'alone', tmp_path / 'cohort'
    root.mkdir()
    write_fewdigits_cohort_suite(root)
    _benchmark(root / 'cohort.py', alone, returncode=1, options=COHORT)
    out = _benchmark(root / 'cohort.py', cohort, '--cohort', returncode=1, options=COHORT)
    assert ('submitted 1 job(s): cohort: baseline resnet8 seed 0, KD resnet20 -> resnet8 '
            'seed 0, Broken resnet20 -> resnet8 seed 0 (job ') in out
    assert len(_job_folders(alone)) == 3 and len(_job_folders(cohort)) == 1
    assert len(_jobs(cohort)) == 3 and len({e['job_id'] for e in _jobs(cohort).values()}) == 1
    assert _csv_states(cohort) == _csv_states(alone) == {
        ('baseline resnet8', '0'): 'done', ('KD resnet20 -> resnet8', '0'): 'done',
        ('Broken resnet20 -> resnet8', '0'): 'failed'}
    broken = cohort / 'broken_resnet20_resnet8_fewdigits' / 'seed_0'
    error = json.loads((broken / 'failure.json').read_text())['error']
    assert 'broken_resnet20_resnet8_fewdigits_seed0: FAILED: ' in error and 'NoSuchMethod' in error
    for key in ('resnet8_fewdigits', 'kd_resnet20_resnet8_fewdigits'):
        weights = [load_local_checkpoint(str(w / key / 'seed_0' / 'epoch_2.pth'))['state_dict']
                   for w in (alone, cohort)]
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), key
    timing = json.loads((cohort / 'kd_resnet20_resnet8_fewdigits' / 'seed_0'
                         / 'run_time.json').read_text())
    assert timing['cohort']['runs'][1] == 'KD resnet20 -> resnet8 seed 0'

    (root / 'configs' / 'broken_resnet20_resnet8_fewdigits.py').write_text(
        f"_base_ = ['{os.path.join(DEMO, 'kd_resnet20_resnet8_fewdigits.py')}']\n")
    out = _benchmark(root / 'cohort.py', cohort, '--cohort', '--retry-failed', options=COHORT)
    assert 'submitted 1 job(s): Broken resnet20 -> resnet8 seed 0 (job ' in out
    assert set(_csv_states(cohort).values()) == {'done'} and len(_job_folders(cohort)) == 2


def _task_of(controller: str) -> int:
    """The process the local executor's controller started for the job."""
    with open(f'/proc/{controller}/task/{controller}/children') as f:
        return int(f.read().split()[0])


@pytest.mark.slow   # two 3-epoch runs in job processes
def test_an_interrupted_job_is_requeued_and_ends_as_an_uninterrupted_run(suite_dir, tmp_path):
    whole, requeued = tmp_path / 'whole', tmp_path / 'requeued'
    runners = [subprocess.Popen(_tool(suite_dir / 'alone.py', work_dir, options=EXACT),
                                cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
               for work_dir in (whole, requeued)]
    run_dir = requeued / 'resnet8_digits' / 'seed_0'
    deadline = time.time() + 600
    while not (run_dir / 'epoch_1.pth').exists():       # written atomically: complete
        assert runners[1].poll() is None and time.time() < deadline, 'training ended early'
        time.sleep(0.05)
    assert not (run_dir / 'epoch_3.pth').exists(), 'the run finished before the signal'
    controller = _jobs(requeued)['resnet8_digits/seed_0']['job_id']
    os.kill(_task_of(controller), signal.SIGUSR2)    # what Slurm sends before the time limit
    for runner in runners:
        out = runner.communicate(timeout=900)[0]
        assert runner.returncode == 0, out[-3000:]
    log = (requeued / 'submitit' / controller / f'{controller}_0_log.out').read_text()
    assert 'Requeued job' in log and log.count('kdbench: baseline resnet8 seed 0: ') == 2
    assert len(list(run_dir.glob('*/vis_data'))) == 2          # two attempts
    weights = [load_local_checkpoint(str(w / 'resnet8_digits' / 'seed_0' / 'epoch_3.pth'))
               ['state_dict'] for w in (whole, requeued)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    histories = [metric_history(str(w / 'resnet8_digits' / 'seed_0'), 'accuracy/top1')
                 for w in (whole, requeued)]
    assert len(histories[0]) == 3 and histories[0] == histories[1]
    assert _csv_states(requeued) == {('baseline resnet8', '0'): 'done'}


@pytest.mark.slow   # two cohort jobs of two 3-epoch runs
def test_an_interrupted_cohort_job_is_requeued_and_ends_as_an_uninterrupted_one(tmp_path):
    root = tmp_path / 'suite'
    root.mkdir()
    write_fewdigits_cohort_suite(root)
    (root / 'pair.py').write_text((root / 'cohort.py').read_text().replace(
        ", 'Broken': 'broken'", ''))
    options = [*COHORT, 'train_cfg.max_epochs=3', 'train_dataloader.batch_size=4']
    whole, requeued = tmp_path / 'whole', tmp_path / 'requeued'
    runners = [subprocess.Popen(_tool(root / 'pair.py', work_dir, '--cohort', options=options),
                                cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
               for work_dir in (whole, requeued)]
    last_member = requeued / 'kd_resnet20_resnet8_fewdigits' / 'seed_0'
    deadline = time.time() + 600
    while not (last_member / 'epoch_1.pth').exists():     # both members saved epoch 1
        assert runners[1].poll() is None and time.time() < deadline, 'training ended early'
        time.sleep(0.05)
    assert not (last_member / 'epoch_3.pth').exists(), 'the run finished before the signal'
    controller = _jobs(requeued)['kd_resnet20_resnet8_fewdigits/seed_0']['job_id']
    os.kill(_task_of(controller), signal.SIGUSR2)
    for runner in runners:
        out = runner.communicate(timeout=900)[0]
        assert runner.returncode == 0, out[-3000:]
    log = (requeued / 'submitit' / controller / f'{controller}_0_log.out').read_text()
    assert 'Requeued job' in log and log.count('kdbench: cohort: baseline resnet8 seed 0, ') == 2
    for key in ('resnet8_fewdigits', 'kd_resnet20_resnet8_fewdigits'):
        checkpoints = [load_local_checkpoint(str(w / key / 'seed_0' / 'epoch_3.pth'))
                       for w in (whole, requeued)]
        assert not differences(*[{k: c[k] for k in CHECKPOINT_KEYS} for c in checkpoints],
                               key)
        histories = [metric_history(str(w / key / 'seed_0'), 'accuracy/top1')
                     for w in (whole, requeued)]
        assert len(histories[0]) == 3 and histories[0] == histories[1]
    assert set(_csv_states(requeued).values()) == {'done'}


def test_the_job_command_is_train_py_or_torchrun_and_always_resumes():
    one = train_command('c.py', '/w', 1, python='py')
    assert one == ['py', os.path.join(ROOT, 'tools', 'train.py'), 'c.py', '--work-dir', '/w',
                   '--resume', 'auto']
    assert train_command('c.py', '/w', 0, python='py') == one
    assert train_command('c.py', '/w', 4) == [
        'bash', os.path.join(ROOT, 'tools', 'dist_train.sh'), 'c.py', '4', '--work-dir', '/w',
        '--resume', 'auto']


def test_slurm_jobs_carry_partition_time_gpus_and_extra_parameters(tmp_path):
    from submitit.slurm.slurm import _make_sbatch_string
    params = slurm_parameters(LaunchOptions(
        'slurm', gpus=8, partition='gpu', timeout_min=90, max_parallel=16,
        slurm=dict(account='lab', mem='64G', setup=['module load cuda'])))
    assert params['ntasks_per_node'] == 1 and params['setup'] == ['module load cuda']
    sbatch = _make_sbatch_string(command='python -m submitit.core._submit F', folder=tmp_path,
                                 map_count=3, **params).splitlines()
    for line in ('#SBATCH --partition=gpu', '#SBATCH --time=90', '#SBATCH --gpus-per-node=8',
                 '#SBATCH --ntasks-per-node=1', '#SBATCH --account=lab', '#SBATCH --mem=64G',
                 '#SBATCH --array=0-2%3', 'module load cuda'):
        assert line in sbatch, line
    assert not any(line.startswith('#SBATCH --error') for line in sbatch)   # one log
    with pytest.raises(ValueError, match='--launcher must be one of'):
        make_executor(LaunchOptions('pbs'), str(tmp_path))


def test_status_table_is_printed_on_change_or_after_a_while(suite_dir, tmp_path):
    lines, now = [], [0.0]
    launcher = SuiteLauncher(Suite(str(suite_dir / 'tiny.py'), str(tmp_path)),
                             LaunchOptions('local', status_every_s=60), lines.append,
                             clock=lambda: now[0])
    states = launcher.states()
    assert states[('resnet20_digits', 0)] == 'ready'
    assert states[('kd_resnet20_resnet8_digits', 0)] == 'waiting'
    launcher._show(states)
    launcher._show(states)
    assert len(lines) == 1
    assert lines[0].splitlines()[0].endswith('2 waiting, 2 ready')
    assert '  teacher resnet20' in lines[0] and 'seed 0 pending' in lines[0]
    now[0] = 61.0
    launcher._show(states)
    assert len(lines) == 2
    assert not (tmp_path / 'submitit').exists()              # nothing submitted


def test_a_dead_job_is_not_alive_and_the_log_tail_stops_at_the_failure(tmp_path):
    from submitit.local.local import LocalJob
    assert not job_alive(LocalJob(folder=str(tmp_path), job_id=str(os.getpid())))
    log = tmp_path / 'log.out'
    log.write_text('start\nKeyError: NoSuchMethod\n' f'{FAILED_MARK} 1\n'
                   'Traceback of submitit\nRuntimeError\n')
    assert log_tail(str(log)) == ['start', 'KeyError: NoSuchMethod', f'{FAILED_MARK} 1']
    assert log_tail(str(tmp_path / 'none')) == []


def test_resumed_attempts_make_one_metric_history(tmp_path):
    for name, records in (('20260101_000000', [(1, 10.0), (2, 20.0)]),
                          ('20260101_010000', [(2, 21.0), (3, 30.0)])):
        (tmp_path / name / 'vis_data').mkdir(parents=True)
        (tmp_path / name / 'vis_data' / 'scalars.json').write_text(''.join(
            json.dumps({'accuracy/top1': v, 'step': s}) + '\n' + json.dumps({'loss': 1.0,
                                                                            'step': 85 * s})
            + '\n' for s, v in records))
    assert metric_history(str(tmp_path), 'accuracy/top1') == [10.0, 21.0, 30.0]


def test_bad_launcher_options_and_suite_slurm_are_refused(suite_dir, tmp_path):
    def refused(*args):
        done = subprocess.run([sys.executable, 'tools/benchmark.py', str(suite_dir / 'tiny.py'),
                               *args], cwd=ROOT, env=_env(), capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 2
        return done.stderr.strip().splitlines()[-1]

    assert refused('--retry-failed').endswith('--retry-failed need --launcher slurm|local.')
    assert refused('--launcher', 'local', '--slurm', 'account=x').endswith(
        '--slurm KEY=VALUE sets #SBATCH parameters: add --launcher slurm.')
    (tmp_path / 'bad.py').write_text((suite_dir / 'tiny.py').read_text().replace(
        "config_dir = 'configs'", f"config_dir = '{suite_dir / 'configs'}'")
        + "slurm = 'account=lab'\n")
    with pytest.raises(ValueError, match="slurm must be a dict of #SBATCH parameters"):
        Suite(str(tmp_path / 'bad.py'), str(tmp_path))


def test_train_job_runs_its_command_times_it_and_raises_on_failure(tmp_path, capfd):
    probe = ('import json, os, signal; json.dump(dict(port=os.environ["MASTER_PORT"], '
             'python=os.environ["PYTHON"], '
             'usr2=signal.getsignal(signal.SIGUSR2) == signal.SIG_IGN), open("probe.json", "w"))')
    assert TrainJob([sys.executable, '-c', probe], 'run', str(tmp_path), 'time.json')() == 'run'
    probed = json.loads((tmp_path / 'probe.json').read_text())
    assert probed['port'].isdigit() and probed['usr2'] is True       # left to the job
    assert probed['python'] == os.environ.get('PYTHON', sys.executable)
    assert json.loads((tmp_path / 'time.json').read_text())['seconds'] > 0
    with pytest.raises(RuntimeError, match='bad: training exited with status 3'):
        TrainJob([sys.executable, '-c', 'raise SystemExit(3)'], 'bad', str(tmp_path), 't')()
    assert f'{FAILED_MARK} 3' in capfd.readouterr().out


def test_checkpoint_stops_the_training_and_resubmits_the_same_job(tmp_path):
    job = TrainJob(['sleep', '60'], 'run', str(tmp_path), 'time.json')
    job._child = subprocess.Popen(['sleep', '60'])
    job._started = time.perf_counter() - 5.0
    delayed = job.checkpoint()
    with pytest.raises(ProcessLookupError):
        os.kill(job._child.pid, 0)                     # stopped and reaped
    assert delayed.function is job and job.seconds >= 5.0
    assert pickle.loads(pickle.dumps(job)).command == ['sleep', '60']


def test_the_cohort_job_command_is_train_cohort_py_or_torchrun_and_resumes_auto():
    assert cohort_command(['a.py', 'b.py'], 1, python='py') == [
        'py', os.path.join(ROOT, 'tools', 'train_cohort.py'), 'a.py', 'b.py', '--resume', 'auto']
    assert cohort_command(['a.py', 'b.py'], 4) == [
        'bash', os.path.join(ROOT, 'tools', 'dist_run.sh'), '4', 'train_cohort.py', 'a.py',
        'b.py', '--resume', 'auto']


def test_with_cohort_the_students_are_one_job_and_the_teacher_one_alone(suite_dir, tmp_path):
    suite = Suite(str(suite_dir / 'tiny.py'), str(tmp_path))
    keys = list(SuiteLauncher(suite, LaunchOptions('local')).states())
    assert len(SuiteLauncher(suite, LaunchOptions('local'))._job_batches(keys)) == 4
    launcher = SuiteLauncher(suite, LaunchOptions('local', gpus=1, cohort=True))
    teacher, students = launcher._job_batches(keys)
    assert [(run.key, seed, cfg) for run, seed, cfg in teacher] == [('resnet20_digits', 0, None)]
    assert [run.key for run, _, _ in students] == [
        'resnet8_digits', 'kd_resnet20_resnet8_digits', 'broken_resnet20_resnet8_digits']
    (tmp_path / 'resnet8_digits' / 'seed_0').mkdir(parents=True)
    (tmp_path / 'resnet8_digits' / 'seed_0' / 'failure.json').write_text('{}')
    job = launcher._call(students)
    configs = [str(tmp_path / 'submitit' / 'configs' / f'{run.key}_seed0.py')
               for run, _, _ in students]
    assert job.command == cohort_command(configs, 1)
    assert job.name == ('cohort: baseline resnet8 seed 0, KD resnet20 -> resnet8 seed 0, '
                        'Broken resnet20 -> resnet8 seed 0')
    assert list(job.timing.values()) == [str(tmp_path / run.key / 'seed_0' / 'run_time.json')
                                         for run, _, _ in students]
    assert not (tmp_path / 'resnet8_digits' / 'seed_0' / 'failure.json').exists()
    dumped = Config.fromfile(configs[1])
    assert dumped.work_dir == str(tmp_path / 'kd_resnet20_resnet8_digits' / 'seed_0')
    assert dumped.model.teacher_ckpt == str(tmp_path / 'resnet20_digits' / 'seed_0' /
                                            'epoch_30.pth')     # no --cfg-options
    assert 'experiment_name' not in dumped


def test_a_cohort_job_times_its_members_also_when_one_failed_and_names_their_errors(tmp_path):
    timing = {'a seed 0': 'a.json', 'b seed 0': 'b.json'}
    with pytest.raises(RuntimeError, match='training exited with status 1'):
        TrainJob([sys.executable, '-c', 'raise SystemExit(1)'], 'cohort: a, b', str(tmp_path),
                 timing)()
    times = [json.loads((tmp_path / name).read_text()) for name in ('a.json', 'b.json')]
    assert times[0] == times[1] and times[0]['cohort']['runs'] == ['a seed 0', 'b seed 0']
    assert times[0]['seconds'] == pytest.approx(times[0]['cohort']['seconds'] / 2)
    log = tmp_path / 'log.out'
    log.write_text('a_seed0: trained (w/a)\nb_seed0: FAILED: KeyError: NoSuchMethod (w/b)\n'
                   f'{FAILED_MARK} 1\n')
    assert member_failure(str(log), 'b_seed0') == 'b_seed0: FAILED: KeyError: NoSuchMethod (w/b)'
    assert member_failure(str(log), 'a_seed0') is None
    assert member_failure(str(tmp_path / 'none'), 'a_seed0') is None
