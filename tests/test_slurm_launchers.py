"""tools/slurm_train.sh and slurm_test.sh (through slurm_run.sh) build the srun line: a
stand-in srun on PATH records its arguments (there is no slurm here)."""
import os
import shutil
import subprocess

import pytest
from shared_setup import ROOT


pytestmark = pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash')


def srun_line(tmp_path, script, *args, **env):
    fake = tmp_path / 'bin' / 'srun'
    fake.parent.mkdir(exist_ok=True)
    fake.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f'{fake.parent}{os.pathsep}{os.environ["PATH"]}', **env)
    if env.get('PYTHON') is None:
        env.pop('PYTHON', None)
    done = subprocess.run(['bash', os.path.join('tools', script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _is_tool(path, name):
    return os.path.samefile(path, os.path.join(ROOT, 'tools', name))


def test_slurm_train_runs_train_py_on_every_gpu(tmp_path):
    argv = srun_line(tmp_path, 'slurm_train.sh', 'gpu', 'kd', 'configs/x.py', 'work_dirs/x',
                     '--seed', '1', GPUS='16', SRUN_ARGS='--qos=low', PYTHON='python3')
    assert argv[:8] == ['-p', 'gpu', '--job-name=kd', '--gres=gpu:8', '--ntasks=16',
                        '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1']
    assert argv[8] == '--qos=low'
    assert argv[9:11] == ['python3', '-u'] and _is_tool(argv[11], 'train.py')
    assert argv[12:] == ['--launcher', 'slurm', 'configs/x.py', '--work-dir=work_dirs/x',
                         '--seed', '1']


def test_slurm_test_runs_test_py_with_the_checkpoint(tmp_path):
    argv = srun_line(tmp_path, 'slurm_test.sh', 'gpu', 'ev', 'configs/x.py', 'x.pth',
                     PYTHON='python3')
    assert '--ntasks=8' in argv
    start = argv.index('python3')
    assert _is_tool(argv[start + 2], 'test.py')
    assert argv[start + 3:] == ['--launcher', 'slurm', 'configs/x.py', 'x.pth']


def test_slurm_runs_the_repository_interpreter_by_default(tmp_path):
    """As tools/dist_run.sh: $PYTHON, else the repository's .venv when present, else python."""
    argv = srun_line(tmp_path, 'slurm_test.sh', 'gpu', 'ev', 'configs/x.py', 'x.pth',
                     PYTHON=None)
    venv = os.path.join(ROOT, '.venv', 'bin', 'python')
    interpreter = argv[argv.index('-u') - 1]
    if os.path.exists(venv):
        assert os.path.samefile(interpreter, venv)
    else:
        assert interpreter == 'python'
