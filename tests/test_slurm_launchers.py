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
    done = subprocess.run(['bash', os.path.join('tools', script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_slurm_train_runs_train_py_on_every_gpu(tmp_path):
    argv = srun_line(tmp_path, 'slurm_train.sh', 'gpu', 'kd', 'configs/x.py', 'work_dirs/x',
                     '--seed', '1', GPUS='16', SRUN_ARGS='--qos=low')
    assert argv[:8] == ['-p', 'gpu', '--job-name=kd', '--gres=gpu:8', '--ntasks=16',
                        '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1']
    assert argv[8] == '--qos=low'
    assert argv[9:] == ['python', '-u', 'tools/train.py', '--launcher', 'slurm',
                        'configs/x.py', '--work-dir=work_dirs/x', '--seed', '1']


def test_slurm_test_runs_test_py_with_the_checkpoint(tmp_path):
    argv = srun_line(tmp_path, 'slurm_test.sh', 'gpu', 'ev', 'configs/x.py', 'x.pth')
    assert '--ntasks=8' in argv
    assert argv[argv.index('python'):] == ['python', '-u', 'tools/test.py', '--launcher',
                                           'slurm', 'configs/x.py', 'x.pth']
