"""tools/train.py --vis: TensorBoard / Weights & Biases through mmengine's vis_backends
(one flag, repeatable), refused up front when the package is missing."""
import glob
import importlib.util
import os
import subprocess
import sys

import pytest
from mmengine.config import Config
from shared_setup import ROOT

from kdbench.apis import enable_vis_backends
from kdbench.apis import vis as vis_module
from kdbench.apis.vis import vis_backends_cfg

CONFIG = os.path.join('configs', 'demo', 'resnet8_digits.py')
HAS_TENSORBOARD = importlib.util.find_spec('tensorboard') is not None


def test_backends_follow_mmengines_local_one_without_duplicates():
    assert vis_backends_cfg(['tensorboard', 'wandb', 'tensorboard']) == [
        dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend'),
        dict(type='WandbVisBackend')]
    with pytest.raises(ValueError, match=r"--vis tb: unknown backend; choose from \['local'"):
        vis_backends_cfg(['tb'])


def test_visualizer_config_is_built_and_extends_the_configs_own(monkeypatch):
    monkeypatch.setattr(vis_module.importlib.util, 'find_spec', lambda name: object())
    cfg = Config(dict(work_dir='w'))
    enable_vis_backends(cfg, [])
    assert 'visualizer' not in cfg
    enable_vis_backends(cfg, ['wandb'])
    assert cfg.visualizer == dict(type='Visualizer', name='visualizer', vis_backends=[
        dict(type='LocalVisBackend'), dict(type='WandbVisBackend')])
    cfg = Config(dict(visualizer=dict(type='Visualizer', vis_backends=[
        dict(type='WandbVisBackend', init_kwargs=dict(project='kd'))])))
    enable_vis_backends(cfg, ['wandb', 'tensorboard'])
    assert cfg.visualizer.vis_backends == [
        dict(type='WandbVisBackend', init_kwargs=dict(project='kd')),
        dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]


def test_missing_package_is_named_with_the_install_command(monkeypatch):
    monkeypatch.setattr(vis_module.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ImportError, match=r"--vis wandb needs the 'wandb' package: pip "
                       r"install 'wandb' \(or pip install -e '\.\[wandb\]'\)"):
        enable_vis_backends(Config(), ['wandb'])


def _train(tmp_path, *extra):
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1')
    return subprocess.run(
        [sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path), *extra,
         '--cfg-options', 'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
         'default_hooks.logger.interval=1'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not HAS_TENSORBOARD, reason='tensorboard not installed')
def test_train_writes_tensorboard_events(tmp_path):
    done = _train(tmp_path, '--vis', 'tensorboard')
    assert done.returncode == 0, done.stderr[-3000:]
    assert glob.glob(str(tmp_path / '*' / 'vis_data' / 'events.out.tfevents.*'))
    assert glob.glob(str(tmp_path / '*' / 'vis_data' / 'scalars.json'))


@pytest.mark.skipif(HAS_TENSORBOARD, reason='tensorboard installed')
def test_train_without_tensorboard_stops_before_training(tmp_path):
    done = _train(tmp_path, '--vis', 'tensorboard')
    assert done.returncode != 0
    assert "--vis tensorboard needs the 'tensorboard' package" in done.stderr
    assert not glob.glob(str(tmp_path / '*' / 'vis_data'))
