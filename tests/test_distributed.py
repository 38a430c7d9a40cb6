"""Distributed runs on CPU processes (torchrun + gloo): tools/dist_train.sh trains a KD
student on 2 processes, and tools/dist_test.sh on 2 processes gives exactly the metrics of
a 1-process evaluation of the same checkpoint (odd test-set size: the sampler pads)."""
import argparse
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from mmengine.config import DictAction
from shared_setup import ROOT, shrink_to_iterations

from kdbench.apis import evaluate, load_config, train
from kdbench.utils.checkpoint import load_local_checkpoint

DEMO = os.path.join(ROOT, 'configs', 'demo')
ODD_TEST_SET = ['test_dataloader.dataset.test_fraction=0.2',    # 359 images
                'val_dataloader.dataset.test_fraction=0.2']

pytestmark = pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash')


def run_script(script, *args, port):
    """Run a tools/*.sh launcher with the venv's python first on PATH; return its output."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1', PORT=str(port),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    command = ['bash', os.path.join(ROOT, 'tools', script), *map(str, args)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def cli_options(*options: str) -> dict:
    """``--cfg-options`` strings parsed exactly as the tools parse them."""
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def last_json(text: str) -> dict:
    return json.loads(text[text.rindex('{'):text.rindex('}') + 1])


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('teacher')
    cfg = load_config(os.path.join(DEMO, 'resnet20_digits.py'), dict(log_level='WARNING'),
                      str(work_dir))
    train(shrink_to_iterations(cfg))
    return str(work_dir / 'iter_2.pth')


def test_two_process_training_and_evaluation_match_one_process(tmp_path, teacher):
    config = os.path.join(DEMO, 'kd_resnet20_resnet8_digits.py')
    work_dir = tmp_path / 'kd'
    out = run_script('dist_train.sh', config, 2, '--work-dir', work_dir, '--cfg-options',
                     f'model.teacher_ckpt={teacher}', 'train_cfg.max_epochs=1',
                     'train_cfg.val_interval=1', *ODD_TEST_SET, port=29611)
    assert 'Effective batch size 128 = 64 per process x 2 processes' in out
    checkpoint = work_dir / 'epoch_1.pth'
    state = load_local_checkpoint(str(checkpoint))['state_dict']
    assert not any(k.startswith('teacher.') for k in state)          # rank 0 wrote it
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())

    out = run_script('dist_test.sh', config, checkpoint, 2, '--work-dir', tmp_path / 'test2',
                     '--cfg-options', *ODD_TEST_SET, port=29612)
    assert out.count('"accuracy/top1"') == 1                     # printed by rank 0 only
    two = last_json(out)
    cfg = load_config(config, cli_options(*ODD_TEST_SET), str(tmp_path / 'test1'))
    one = evaluate(cfg, str(checkpoint))
    assert two == one
