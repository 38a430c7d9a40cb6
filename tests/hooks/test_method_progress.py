"""MethodProgressHook: every distillation method sees the training progress (epoch from 1,
iteration from 0, their maxima), in epoch- and iteration-based runs and after a resume."""
import os

import pytest
import torch
from shared_setup import ROOT, registered_method

from kdbench.apis import KDRunner, load_config, train
from kdbench.distill.base import DistillMethod, TrainingProgress
from kdbench.registry import DISTILL_METHODS

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'kd_resnet20_resnet8_digits.py')
SEEN = []


class ToyWarmup(DistillMethod):
    """A logit L2 term ramped by ``min(epoch / warmup, 1)`` (test only); records progress."""

    def __init__(self, warmup: int = 2, taps=('logits',)):
        super().__init__(taps)
        self.warmup = warmup

    def forward(self, student, teacher, data_samples=None):
        SEEN.append(self.progress)
        factor = min(self.progress.epoch / self.warmup, 1.0)
        loss = (student['logits'] - teacher['logits']).pow(2).mean()
        return {f'loss_{self.name}': factor * loss,
                f'{self.name}_factor': torch.tensor(factor)}


@pytest.fixture(autouse=True)
def toy_warmup():
    """ToyWarmup is registered while this file's tests run, and only then."""
    with registered_method(ToyWarmup):
        yield


def _cfg(work_dir, teacher_ckpt, by_epoch=True, max_epochs=2):
    """The digits KD config with the toy method, 3 iterations per epoch (batch 512)."""
    cfg = load_config(CONFIG, {'log_level': 'WARNING'}, str(work_dir))
    cfg.model.methods = dict(toy=dict(type='ToyWarmup', warmup=2))
    cfg.model.teacher_ckpt = teacher_ckpt(cfg.model.teacher.to_dict())
    cfg.train_dataloader.batch_size = 512
    cfg.param_scheduler = []
    if by_epoch:
        cfg.train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=100)
    else:
        cfg.train_cfg = dict(by_epoch=False, max_iters=5, val_interval=100)
        cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=5)
        cfg.log_processor = dict(by_epoch=False)
    return cfg


def test_default_runtime_lists_the_hook():
    hooks = [h['type'] for h in load_config(CONFIG).custom_hooks]
    assert 'MethodProgressHook' in hooks


def test_methods_start_without_progress():
    assert DISTILL_METHODS.build(dict(type='KD')).progress is None


def test_epoch_based_progress_and_warmup(tmp_path, teacher_ckpt):
    SEEN.clear()
    runner = train(_cfg(tmp_path, teacher_ckpt))
    assert [p.epoch for p in SEEN] == [1, 1, 1, 2, 2, 2]
    assert [p.iter for p in SEEN] == [0, 1, 2, 3, 4, 5]
    assert {(p.max_epochs, p.max_iters) for p in SEEN} == {(2, 6)}
    # The last iteration is in epoch 2: the warm-up reached its full weight.
    assert runner.message_hub.get_scalar('train/toy_factor').current() == 1.0


def test_resume_sees_the_resumed_epoch(tmp_path, teacher_ckpt):
    train(_cfg(tmp_path, teacher_ckpt, max_epochs=1))
    SEEN.clear()
    cfg = _cfg(tmp_path, teacher_ckpt, max_epochs=2)
    cfg.resume = True              # the latest checkpoint of work_dir: epoch_1.pth
    runner = KDRunner.from_cfg(cfg)
    runner.train()
    assert [(p.epoch, p.iter) for p in SEEN] == [(2, 3), (2, 4), (2, 5)]
    assert SEEN[0] == TrainingProgress(epoch=2, iter=3, max_epochs=2, max_iters=6)


def test_iteration_based_progress_counts_passes_over_the_data(tmp_path, teacher_ckpt):
    SEEN.clear()
    train(_cfg(tmp_path, teacher_ckpt, by_epoch=False))
    per_epoch = 3                  # ceil(1437 digits training images / 512)
    assert [p.iter for p in SEEN] == [0, 1, 2, 3, 4]
    assert [p.epoch for p in SEEN] == [i // per_epoch + 1 for i in range(5)]
    assert {(p.max_epochs, p.max_iters) for p in SEEN} == {(2, 5)}


@pytest.mark.parametrize('epoch, factor', [(1, 0.5), (2, 1.0), (7, 1.0)])
def test_toy_warmup_reads_the_progress(epoch, factor):
    method = ToyWarmup(warmup=2)
    method.name = 'toy'
    method.progress = TrainingProgress(epoch, 0, 10, 100)
    logits = torch.zeros(2, 3)
    assert method({'logits': logits + 1}, {'logits': logits})['toy_factor'] == factor
