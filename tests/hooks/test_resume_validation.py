"""ResumeValidationHook: a run resumed from an epoch checkpoint written before that
epoch's validation (what a run stopped during the validation leaves, or one whose
validation found no new best) validates first and ends as the uninterrupted run; one
resumed from the checkpoint rewritten after the validation does not validate again."""
import os
import shutil

import pytest
import torch
from mmengine.hooks import Hook
from shared_setup import ROOT

from kdbench.apis import load_config, train
from kdbench.hooks.final_metrics import HISTORY_KEY
from kdbench.registry import HOOKS
from kdbench.utils.checkpoint import load_local_checkpoint

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py')
# 2 epochs of 11 iterations, validation and a checkpoint after each, deterministic.
OPTIONS = {'train_cfg.max_epochs': 2, 'train_cfg.val_interval': 1,
           'train_dataloader.batch_size': 128, 'randomness.deterministic': True,
           'default_hooks.checkpoint.max_keep_ckpts': 3, 'log_level': 'WARNING'}
BEFORE_VALIDATION = 'epoch_1_before_validation.pth'


@HOOKS.register_module()
class CopyEpochCheckpointHook(Hook):
    """Copies ``epoch_1.pth`` as the ``CheckpointHook`` wrote it at the end of epoch 1,
    before the validation (which rewrites it: a new best)."""

    priority = 'LOWEST'       # after the CheckpointHook (VERY_LOW) in after_train_epoch

    def after_train_epoch(self, runner) -> None:
        if runner.epoch == 0:          # counted after these hooks
            shutil.copy(os.path.join(runner.work_dir, 'epoch_1.pth'),
                        os.path.join(runner.work_dir, BEFORE_VALIDATION))


def _cfg(work_dir, resume_from=None):
    cfg = load_config(CONFIG, dict(OPTIONS), str(work_dir))
    if resume_from is not None:
        cfg.resume, cfg.load_from = True, str(resume_from)
    return cfg


@pytest.fixture(scope='module')
def whole(tmp_path_factory):
    """An uninterrupted run: its work dir and its validation history."""
    work_dir = tmp_path_factory.mktemp('whole')
    cfg = _cfg(work_dir)
    cfg.custom_hooks = [*cfg.custom_hooks, dict(type='CopyEpochCheckpointHook')]
    runner = train(cfg)
    return work_dir, runner.message_hub.get_info(HISTORY_KEY)


def _stages(path):
    return load_local_checkpoint(str(path))['message_hub']['runtime_info']['loop_stage']


@pytest.mark.parametrize('checkpoint', [BEFORE_VALIDATION, 'epoch_1.pth'])
def test_a_resumed_run_validates_what_its_checkpoint_missed_and_ends_as_the_whole_run(
        whole, tmp_path, checkpoint):
    whole_dir, whole_history = whole
    assert _stages(whole_dir / BEFORE_VALIDATION) == 'train'
    assert _stages(whole_dir / 'epoch_1.pth') == 'val'
    runner = train(_cfg(tmp_path, resume_from=whole_dir / checkpoint))

    history = runner.message_hub.get_info(HISTORY_KEY)
    assert [entry['epoch'] for entry in history] == [1, 2]       # epoch 1 validated once
    assert history == whole_history
    expected = load_local_checkpoint(str(whole_dir / 'epoch_2.pth'))
    resumed = load_local_checkpoint(str(tmp_path / 'epoch_2.pth'))
    for key, value in expected['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    for index, state in expected['optimizer']['state'].items():
        assert torch.equal(state['momentum_buffer'],
                           resumed['optimizer']['state'][index]['momentum_buffer'])
    assert torch.equal(expected['random_states']['states'][0]['torch'],
                       resumed['random_states']['states'][0]['torch'])
