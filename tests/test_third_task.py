"""The task contract (kdbench/task.py) is enough for a task kdbench does not know: the
test-only pixel-regression plugin (tests/third_task) trains with the feature methods
through tools/train.py, evaluates through tools/test.py and prints its recipe card
through tools/recipe.py; logit methods refuse it at build time."""
import json
import os
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from shared_setup import ROOT, shrink_to_iterations

import third_task  # noqa: F401  (registers the plugin, as custom_imports does)
from kdbench.apis import load_config, train
from kdbench.registry import MODELS
from kdbench.task import TaskModel, TaskSpec, labels, task_of

CONFIGS = os.path.join(ROOT, 'tests', 'third_task', 'configs')
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.path.join(ROOT, 'tests')]))
FEATURE_METHODS = {
    'fitnet': dict(type='FitNet'),
    'tat': dict(type='TaT'),
    'cwd': dict(type='CWD', taps=['last_stage']),
}


def _tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope='module')
def teacher(tmp_path_factory):
    """The regression teacher trained by tools/train.py (2 epochs of 4 iterations)."""
    work_dir = tmp_path_factory.mktemp('third_teacher')
    done = _tool('tools/train.py', os.path.join(CONFIGS, 'teacher.py'), '--work-dir',
                 str(work_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    return str(work_dir / 'epoch_2.pth')


def test_the_plugin_implements_the_contract():
    model = MODELS.build(Config.fromfile(os.path.join(CONFIGS, 'student.py')).model)
    assert isinstance(model, TaskModel)
    assert task_of(model, 'student') == TaskSpec('pixel regression', dense=True)
    batch = model.example_batch(2, 32, torch.Generator().manual_seed(0))
    assert batch['inputs'].dtype == torch.uint8 and batch['inputs'].shape == (2, 3, 32, 32)
    assert labels(batch['data_samples']).shape == (2, 32, 32)
    data = model.data_preprocessor(batch, True)
    assert set(model(**data, mode='loss')) == {'loss_l1'}


def test_train_test_and_recipe_through_the_tools(teacher, tmp_path):
    config = os.path.join(CONFIGS, 'distill.py')
    done = _tool('tools/train.py', config, '--work-dir', str(tmp_path),
                 '--cfg-options', f'model.teacher_ckpt={teacher}')
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert 'loss_at' in log and 'teacher/regression/mae' in log
    done = _tool('tools/test.py', os.path.join(CONFIGS, 'student.py'),
                 str(tmp_path / 'epoch_2.pth'))
    assert done.returncode == 0, done.stderr[-3000:]
    mae = json.loads(done.stdout[done.stdout.rindex('\n{') + 1:])['regression/mae']
    assert 0 <= mae < 1
    done = _tool('tools/recipe.py', config)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'loss_at: AT' in done.stdout and 'ShadedBlobs(split=train), 32 images' in done.stdout


@pytest.mark.parametrize('name', sorted(FEATURE_METHODS))
def test_feature_methods_train_two_iterations(teacher, tmp_path, name):
    cfg = load_config(os.path.join(CONFIGS, 'distill.py'),
                      {'log_level': 'WARNING', 'model.teacher_ckpt': teacher}, str(tmp_path))
    cfg.model.methods = {name: FEATURE_METHODS[name]}
    runner = train(shrink_to_iterations(cfg))
    loss = runner.message_hub.get_scalar(f'train/loss_{name}').current()
    assert torch.isfinite(torch.tensor(loss)) and loss > 0
    assert 0 <= runner.message_hub.get_scalar('val/regression/mae').current() < 1


def test_logit_methods_refuse_a_task_without_classes(teacher):
    cfg = Config.fromfile(os.path.join(CONFIGS, 'distill.py')).model.to_dict()
    cfg.update(teacher_ckpt=teacher, methods=dict(kd=dict(type='KD')))
    with pytest.raises(ValueError, match=r"\['kd'\] read the class-logits tap 'logits', but "
                                         'the pixel regression task has no classes'):
        MODELS.build(cfg)
