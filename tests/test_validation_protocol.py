"""The `validation` config key: checks, the dataloaders it rewrites, the command line."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from mmengine.config import Config
from shared_setup import ROOT

from kdbench.apis import load_config
from kdbench.apis.validation import ValidationProtocol, training_config, validation_protocol
from kdbench.registry import DATASETS

CIFAR = os.path.join(ROOT, 'configs', 'cls', 'kd_resnet32x4_resnet8x4_cifar100.py')
VOC = os.path.join(ROOT, 'configs', 'seg', 'at_deeplabv3p_r101_r18_voc.py')
FEWDIGITS = os.path.join(ROOT, 'configs', 'demo', 'kd_resnet20_resnet8_fewdigits.py')
HOLDOUT = {'validation.split': 'holdout'}


def _plain(value):
    return value.to_dict() if hasattr(value, 'to_dict') else value


def test_no_key_is_the_papers_protocol_and_changes_only_the_hooks():
    cfg = load_config(CIFAR)
    assert validation_protocol(cfg) == ValidationProtocol('test', None, None, 0)
    out = training_config(cfg)
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert _plain(out[key]) == _plain(cfg[key])
    assert out.custom_hooks[-1] == dict(type='FinalMetricsHook', protocol='test')
    assert out.custom_hooks[:-1] == cfg.custom_hooks
    assert 'FinalMetricsHook' not in str(cfg.custom_hooks)           # the input is unchanged


def test_holdout_splits_the_training_set_and_keeps_the_test_loader():
    cfg = load_config(CIFAR, dict(HOLDOUT, **{'validation.size': 200, 'validation.seed': 3}))
    out = training_config(cfg)
    train, val = out.train_dataloader.dataset, out.val_dataloader.dataset
    original = _plain(cfg.train_dataloader.dataset)
    assert _plain(train) == dict(type='HoldoutSplit', dataset=original, part='train',
                                 size=200, seed=3)
    assert val.type == 'HoldoutSplit' and val.part == 'val' and val.size == 200
    assert _plain(val.dataset) == dict(original, pipeline=None)       # CIFAR's val: none
    assert _plain(out.test_dataloader) == _plain(cfg.test_dataloader)
    assert out.test_dataloader.dataset.split == 'test'
    assert out.val_dataloader.batch_size == cfg.val_dataloader.batch_size
    assert out.custom_hooks[-1] == dict(type='FinalMetricsHook', protocol='holdout')


def test_holdout_uses_the_val_pipeline_of_segmentation_and_wrapped_sets():
    out = training_config(load_config(VOC, HOLDOUT))
    assert out.val_dataloader.dataset.dataset.split == 'train_aug'
    assert out.val_dataloader.dataset.dataset.pipeline == []
    assert out.train_dataloader.dataset.dataset.pipeline                # augmented
    split = dict(HOLDOUT, **{'validation.size': 20, 'validation.source': 'train'})
    out = training_config(load_config(FEWDIGITS, split))
    inner = out.val_dataloader.dataset.dataset
    assert inner.type == 'ClassSubsetDataset' and inner.dataset.pipeline is None
    assert out.train_dataloader.dataset.dataset.dataset.pipeline


def test_unused_holds_out_of_what_a_reduced_set_leaves_out_and_trains_on_all_of_it():
    cfg = load_config(FEWDIGITS, {'validation.split': 'holdout', 'validation.source': 'unused',
                                  'validation.size': 450})
    out = training_config(cfg)
    assert _plain(out.train_dataloader) == _plain(cfg.train_dataloader)     # all 130 images
    val = DATASETS.build(out.val_dataloader.dataset)
    train = DATASETS.build(out.train_dataloader.dataset)
    pool = val.dataset                          # the 1217 images the reduction leaves out
    assert (len(val), len(train), len(pool)) == (450, 130, 1347 - 130)
    assert not set(pool.indices[val.indices]) & set(train.indices)
    assert np.bincount(val.labels).min() >= 43            # stratified: 45 per class or so
    assert out.val_dataloader.dataset.dataset.dataset.pipeline is None    # the val pipeline


def test_fraction_and_cli_values_reach_the_split():
    with warnings.catch_warnings():
        warnings.simplefilter('error')           # 'validation' is a known kdbench key
        cfg = load_config(CIFAR, dict(HOLDOUT, **{'validation.fraction': 0.1}))
    assert validation_protocol(cfg) == ValidationProtocol('holdout', None, 0.1, 0)
    assert training_config(cfg).val_dataloader.dataset.fraction == 0.1


@pytest.mark.parametrize('value, match', [
    ('holdout', 'validation must be a dict'),
    (dict(split='valid'), r"validation.split must be one of \['test', 'holdout'\]"),
    (dict(split='holdout', size=0), 'validation.size must be a whole number of items >= 1'),
    (dict(split='holdout', size=-3), 'validation.size must be'),
    (dict(split='holdout', size=2.5), 'validation.size must be'),
    (dict(split='holdout', size='100'), 'validation.size must be'),
    (dict(split='holdout', size=True), 'validation.size must be'),
    (dict(split='holdout', fraction=0), r'validation.fraction must be a number in \(0, 1\)'),
    (dict(split='holdout', fraction=1.0), 'validation.fraction must be'),
    (dict(split='holdout', fraction='0.1'), 'validation.fraction must be'),
    (dict(split='holdout', size=10, fraction=0.1), 'both size=10 and fraction=0.1'),
    (dict(split='holdout', seed='zero'), 'validation.seed must be an integer'),
    (dict(split='holdout', sizes=10), r"unknown keys \['sizes'\]"),
    (dict(split='holdout', source='test'), r"validation.source must be one of \['train', "
                                           r"'unused'\]"),
    (dict(split='holdout', source='unused'), "CIFAR100.* reduces nothing .*use "
                                             "validation.source='train'"),
])
def test_bad_values_are_refused_naming_the_key(value, match):
    cfg = load_config(CIFAR)
    cfg.validation = value
    with pytest.raises(ValueError, match=match):
        training_config(cfg)


def test_holdout_needs_the_test_settings():
    cfg = load_config(CIFAR, HOLDOUT)
    cfg.test_dataloader = None
    with pytest.raises(ValueError, match='lacks test_dataloader. Set them, or use '
                       'validation.split=test'):
        training_config(cfg)


def test_joined_datasets_are_refused():
    cfg = load_config(CIFAR, HOLDOUT)
    cfg.train_dataloader.dataset = dict(type='ConcatDataset', datasets=[
        cfg.train_dataloader.dataset, cfg.train_dataloader.dataset])
    with pytest.raises(ValueError, match='joins several datasets'):
        training_config(cfg)


def test_train_tool_refuses_a_bad_key_before_building_anything(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'train.py'), CIFAR, '--work-dir',
         str(tmp_path / 'w'), '--cfg-options', 'validation.split=holdout',
         'validation.size=0'], capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 1
    assert 'validation.size must be a whole number of items >= 1' in result.stderr
    assert not (tmp_path / 'w').exists()


def test_train_cohort_tool_refuses_a_bad_key_before_building_anything(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'train_cohort.py'), CIFAR,
         '--work-dir-root', str(tmp_path / 'w'), '--cfg-options', 'validation.split=holdout',
         'validation.size=0'], capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 1
    assert 'validation.size must be a whole number of items >= 1' in result.stderr
    assert CIFAR in result.stderr and not (tmp_path / 'w').exists()


def test_runner_config_is_the_training_config(tmp_path):
    from kdbench.apis import KDRunner
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py'),
                      dict(HOLDOUT, log_level='WARNING'), str(tmp_path))
    runner = KDRunner.from_cfg(cfg)
    assert runner.cfg.train_dataloader.dataset.type == 'HoldoutSplit'
    assert cfg.train_dataloader.dataset.type == 'DigitsDataset'
    assert isinstance(cfg, Config)


def test_recipe_cards_count_the_images_of_each_part():
    from kdbench.apis.recipe import train_set_size
    out = training_config(load_config(CIFAR, HOLDOUT))
    assert train_set_size(out.train_dataloader.dataset) == 45000        # default 5000
    assert train_set_size(out.val_dataloader.dataset) == 5000
    out = training_config(load_config(VOC, dict(HOLDOUT, **{'validation.fraction': 0.2})))
    assert train_set_size(out.train_dataloader.dataset) == 10582 - 2116
