"""NonFiniteLossGuard and NonFiniteSkipOptimWrapper: a test-only KD that returns NaN at
chosen calls makes a Runner on the embedded digits data stop before a checkpoint of the bad
weights is written, or skip the step and leave the parameters untouched."""
import math
import os

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from shared_setup import ROOT, registered_method

import kdbench.hooks.nonfinite as nonfinite
from kdbench.apis import load_config
from kdbench.distill.kd import KD
from kdbench.hooks import NonFiniteLossError, NonFiniteLossGuard, NonFiniteSkipOptimWrapper
from kdbench.utils.checkpoint import load_local_checkpoint

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'kd_resnet20_resnet8_digits.py')


class NaNAtCallsKD(KD):
    """KD whose loss is multiplied by NaN at the 1-based calls in ``nan_at`` (test only)."""

    def __init__(self, nan_at=(), **kwargs):
        super().__init__(**kwargs)
        self.nan_at, self.calls = set(nan_at), 0

    def forward(self, student, teacher, data_samples=None):
        terms = super().forward(student, teacher, data_samples)
        self.calls += 1
        if self.calls in self.nan_at:
            terms = {k: v * float('nan') for k, v in terms.items()}
        return terms


@pytest.fixture(autouse=True)
def nan_kd():
    """NaNAtCallsKD is registered while this file's tests run, and only then."""
    with registered_method(NaNAtCallsKD):
        yield


class Recorder(Hook):
    """Copies of the trainable parameters and optimizer state around every iteration."""

    def __init__(self):
        self.before, self.after = {}, {}

    def _state(self, runner):
        params = {k: p.detach().clone() for k, p in runner.model.named_parameters()
                  if p.requires_grad}
        optim = {i: {k: v.clone() for k, v in s.items()}
                 for i, s in runner.optim_wrapper.optimizer.state_dict()['state'].items()}
        return params, optim

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before[runner.iter] = self._state(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.after[runner.iter] = self._state(runner)


@pytest.fixture
def digits_teacher(tiny_classifier_cfg, teacher_ckpt):
    return teacher_ckpt(tiny_classifier_cfg('resnet8', 10), name='resnet8.pth')


def _runner(work_dir, teacher, nan_at, max_iters=None, **options):
    """The demo KD config (resnet8 teacher, batch 8, no validation) with NaN at ``nan_at``,
    a checkpoint after every iteration, and either ``max_iters`` iterations or one epoch."""
    cfg = load_config(CONFIG, dict(log_level='WARNING', **options), str(work_dir))
    cfg.model.teacher.net.type = 'resnet8'
    cfg.model.teacher_ckpt = teacher
    cfg.model.methods.kd.update(type='NaNAtCallsKD', nan_at=list(nan_at))
    if max_iters is None:
        cfg.train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=2)
    else:
        cfg.train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters + 1)
        cfg.log_processor = dict(by_epoch=False)
    cfg.param_scheduler = []
    cfg.train_dataloader.batch_size = 8
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=1)
    runner = Runner.from_cfg(cfg)
    recorder = Recorder()
    runner.register_hook(recorder, priority='VERY_HIGH')
    return runner, recorder


def _equal(a, b):
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a)


def test_default_runtime_registers_the_guard(tmp_path):
    cfg = load_config(CONFIG, work_dir=str(tmp_path))
    assert dict(type='NonFiniteLossGuard') in cfg.custom_hooks
    assert NonFiniteLossGuard.priority == 'ABOVE_NORMAL'      # before CheckpointHook


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, digits_teacher):
    runner, recorder = _runner(tmp_path, digits_teacher, nan_at=(3,))
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    assert 'loss_kd = nan' in message and 'loss_cls' not in message
    assert 'iteration 3 (epoch 1/1, batch 3/' in message
    assert CONFIG in message
    assert str(tmp_path / 'iter_2.pth') in message
    assert NonFiniteSkipOptimWrapper.__name__ in message
    # The bad step did corrupt the weights in memory ...
    params, _ = recorder.after[2]
    assert any(not torch.isfinite(p).all() for p in params.values())
    # ... but no checkpoint of them was written: the last one is the state before the step.
    assert sorted(os.listdir(tmp_path)).count('iter_3.pth') == 0
    assert (tmp_path / 'last_checkpoint').read_text().strip().endswith('iter_2.pth')
    saved = load_local_checkpoint(str(tmp_path / 'iter_2.pth'))['state_dict']
    before, _ = recorder.before[2]
    for key, value in before.items():
        assert torch.isfinite(saved[key]).all(), key
        assert torch.equal(saved[key], value), key


def test_skip_leaves_parameters_and_momentum_unchanged(tmp_path, digits_teacher, monkeypatch):
    warnings = []
    monkeypatch.setattr(nonfinite, 'print_log', lambda msg, **kw: warnings.append(msg))
    runner, recorder = _runner(tmp_path, digits_teacher, nan_at=(2,), max_iters=4,
                               **{'optim_wrapper.type': 'NonFiniteSkipOptimWrapper'})
    runner.train()
    assert isinstance(runner.optim_wrapper, NonFiniteSkipOptimWrapper)
    params, optim = recorder.before[1]
    params_after, optim_after = recorder.after[1]
    assert _equal(params, params_after) and optim.keys() == optim_after.keys()
    assert all(_equal(optim[i], optim_after[i]) for i in optim)
    assert all(p.grad is None or not p.grad.any() for p in runner.model.parameters())
    # Ordinary steps before and after the skipped one do move the weights.
    assert not _equal(recorder.before[0][0], recorder.after[0][0])
    assert not _equal(recorder.before[2][0], recorder.after[2][0])
    assert runner.iter == 4 and (tmp_path / 'iter_4.pth').is_file()
    saved = load_local_checkpoint(str(tmp_path / 'iter_4.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in saved.values() if v.is_floating_point())
    assert runner.message_hub.get_info('nonfinite_skips') == 1
    assert runner.message_hub.get_info('nonfinite_consecutive_skips') == 0
    assert len(warnings) == 1 and 'iteration 2/4' in warnings[0]
    assert 'loss_kd = nan' in warnings[0] and 'skipped' in warnings[0]


def test_skip_stops_after_max_consecutive_skips(tmp_path, digits_teacher):
    runner, _ = _runner(tmp_path, digits_teacher, nan_at=range(2, 10), max_iters=6,
                        **{'optim_wrapper.type': 'NonFiniteSkipOptimWrapper',
                           'optim_wrapper.max_consecutive_skips': 2})
    with pytest.raises(NonFiniteLossError) as info:
        runner.train()
    message = str(info.value)
    assert 'iteration 3/6' in message and 'loss_kd = nan' in message
    assert '2 optimizer steps in a row' in message
    assert not (tmp_path / 'iter_3.pth').exists()
    saved = load_local_checkpoint(str(tmp_path / 'iter_2.pth'))['state_dict']
    assert all(torch.isfinite(v).all() for v in saved.values() if v.is_floating_point())


# ----------------------------------------------------------------------------- units

def _wrapper(**kwargs):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    return model, NonFiniteSkipOptimWrapper(optimizer, **kwargs)


def _loss(model, bad=False):
    loss = model(torch.ones(4, 3)).square().mean()
    return loss * float('inf') if bad else loss


def test_wrapper_without_guard_raises_itself():
    model, wrapper = _wrapper(max_consecutive_skips=2)
    wrapper.update_params(_loss(model))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    wrapper.update_params(_loss(model, bad=True))
    assert _equal(state, model.state_dict()) and wrapper.total_skips == 1
    with pytest.raises(NonFiniteLossError, match='2 optimizer steps in a row'):
        wrapper.update_params(_loss(model, bad=True))
    assert _equal(state, model.state_dict())


def test_wrapper_drops_a_poisoned_accumulation_window():
    model, wrapper = _wrapper(accumulative_counts=2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    wrapper.update_params(_loss(model, bad=True))     # first micro-batch non-finite
    wrapper.update_params(_loss(model))                # window ends: skipped
    assert _equal(state, model.state_dict()) and wrapper.total_skips == 1
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    wrapper.update_params(_loss(model))
    wrapper.update_params(_loss(model))                # a clean window steps
    assert not _equal(state, model.state_dict()) and wrapper.consecutive_skips == 0


def test_nonfinite_terms():
    terms = nonfinite.nonfinite_terms(dict(loss=torch.tensor(math.inf),
                                           loss_cls=torch.tensor(1.0),
                                           loss_at=torch.tensor(math.inf), acc=math.nan))
    assert terms == dict(loss=math.inf, loss_at=math.inf)


def test_max_consecutive_skips_must_be_positive():
    with pytest.raises(ValueError, match='max_consecutive_skips'):
        _wrapper(max_consecutive_skips=0)
