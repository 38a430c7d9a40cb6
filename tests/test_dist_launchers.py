"""tools/dist_train.sh and dist_test.sh (through tools/dist_run.sh): the interpreter rule
(PYTHON, else the repository's .venv, else python), torchrun's multi-node variables, the
metrics printed once by N processes, --out collected from every process, and a run of two
local "nodes" of one process each over gloo."""
import json
import os
import shutil
import subprocess
import sys

import pytest
from shared_setup import ROOT

DEMO = os.path.join(ROOT, 'configs', 'demo')

pytestmark = pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash')


def launch(script, *args, root=ROOT, **env):
    """Start tools/<script> with a PATH that holds no python of this venv."""
    path = os.pathsep.join(p for p in os.environ['PATH'].split(os.pathsep)
                           if os.path.realpath(p) != os.path.realpath(os.path.dirname(
                               sys.executable)))
    env = {k: v for k, v in dict(os.environ, PATH=path, NO_ALBUMENTATIONS_UPDATE='1',
                                 **env).items() if k != 'PYTHON' or 'PYTHON' in env}
    return subprocess.Popen(['bash', os.path.join(root, 'tools', script), *map(str, args)],
                            cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(process, timeout=600):
    out, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, out[-4000:]
    return out


@pytest.fixture
def fake_repo(tmp_path):
    """tools/ copied beside a .venv whose python prints its arguments."""
    shutil.copytree(os.path.join(ROOT, 'tools'), tmp_path / 'tools',
                    ignore=shutil.ignore_patterns('*.py'))
    fake = tmp_path / '.venv' / 'bin' / 'python'
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/usr/bin/env bash\necho "venv python"\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    return tmp_path


def test_interpreter_is_the_repos_venv_then_PYTHON(fake_repo, tmp_path):
    out = finish(launch('dist_train.sh', 'cfg.py', 4, '--seed', '1', root=fake_repo))
    lines = out.splitlines()
    assert lines[0] == 'venv python'
    assert lines[1:] == ['-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0',
                         '--master_addr=127.0.0.1', '--master_port=29500',
                         '--nproc_per_node=4', f'{fake_repo}/tools/train.py', 'cfg.py',
                         '--seed', '1', '--launcher', 'pytorch']
    other = tmp_path / 'other_python'
    other.write_text('#!/usr/bin/env bash\necho "other python"\nprintf "%s\\n" "$@"\n')
    other.chmod(0o755)
    out = finish(launch('dist_test.sh', 'cfg.py', 'ckpt.pth', 2, root=fake_repo,
                        PYTHON=str(other), NNODES='2', NODE_RANK='1', MASTER_ADDR='10.0.0.5',
                        MASTER_PORT='29555'))
    lines = out.splitlines()
    assert lines[0] == 'other python'
    assert lines[3:10] == ['--nnodes=2', '--node_rank=1', '--master_addr=10.0.0.5',
                           '--master_port=29555', '--nproc_per_node=2',
                           f'{fake_repo}/tools/test.py', 'cfg.py']
    out = finish(launch('dist_test.sh', 'cfg.py', 'ckpt.pth', 2, root=fake_repo, PORT='29601'))
    assert '--master_port=29601' in out.splitlines()          # the older PORT still works


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    import torch

    import tasks.classification  # noqa: F401
    from kdbench.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(dict(type='ImageClassifier',
                              net=dict(type='resnet8', num_classes=10)))
    path = tmp_path_factory.mktemp('ckpt') / 'resnet8.pth'
    torch.save({'state_dict': model.state_dict()}, path)
    return path


@pytest.mark.slow
def test_dist_test_prints_metrics_once_and_collects_out_from_both(tmp_path, checkpoint):
    out = finish(launch('dist_test.sh', os.path.join(DEMO, 'resnet8_digits.py'), checkpoint,
                        2, '--work-dir', tmp_path / 'work', '--out', tmp_path / 'res.json',
                        '--cfg-options', 'test_dataloader.dataset.test_fraction=0.2',
                        'test_dataloader.batch_size=64',
                        PYTHON=sys.executable, NNODES='1', MASTER_PORT='29631'))
    assert out.count('"accuracy/top1"') == 1
    metrics = json.loads(out[out.rindex('{'):out.rindex('}') + 1])
    records = json.load(open(tmp_path / 'res.json'))
    assert [r['index'] for r in records] == list(range(359))        # odd: the sampler pads
    top1 = 100 * sum(r['topk'][0] == r['label'] for r in records) / 359
    assert metrics['accuracy/top1'] == pytest.approx(top1)


@pytest.mark.slow
def test_two_local_nodes_of_one_process_train_together(tmp_path):
    args = (os.path.join(DEMO, 'resnet8_digits.py'), 1, '--work-dir', tmp_path / 'work',
            '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
            'train_dataloader.batch_size=32')
    env = dict(PYTHON=sys.executable, NNODES='2', MASTER_ADDR='127.0.0.1',
               MASTER_PORT='29641')
    nodes = [launch('dist_train.sh', *args, NODE_RANK=str(rank), **env) for rank in (0, 1)]
    outs = [finish(node) for node in nodes]
    assert 'Effective batch size 64 = 32 per process x 2 processes' in outs[0]
    assert (tmp_path / 'work' / 'epoch_1.pth').is_file()
