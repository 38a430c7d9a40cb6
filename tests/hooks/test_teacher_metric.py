"""TeacherMetricHook: the teacher's validation metrics logged beside the student's,
evaluated once per teacher checkpoint and validation setup, then read from the cache."""
import os

import pytest
import torch

import kdbench.hooks.teacher_metric as teacher_metric
from kdbench.apis import load_config, train
from kdbench.hooks.teacher_metric import TeacherMetricHook, read_cache

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _digits_cfg(config, work_dir, teacher_ckpt, cache_file):
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', config),
                      {'log_level': 'WARNING', 'model.teacher_ckpt': teacher_ckpt},
                      str(work_dir))
    cfg.train_cfg = dict(by_epoch=False, max_iters=4, val_interval=2)
    cfg.param_scheduler = []
    cfg.train_dataloader.batch_size = 16
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=4)
    cfg.log_processor = dict(by_epoch=False)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'TeacherMetricHook']
    cfg.custom_hooks.append(dict(type='TeacherMetricHook', cache_file=str(cache_file)))
    return cfg


def _hook(runner):
    return next(h for h in runner.hooks if isinstance(h, TeacherMetricHook))


def test_teacher_is_evaluated_once_then_read_from_the_cache(tmp_path, teacher_ckpt,
                                                            monkeypatch):
    ckpt = teacher_ckpt(dict(type='ImageClassifier',
                             net=dict(type='resnet20', num_classes=10)))
    cache = tmp_path / 'teacher_metrics.json'
    calls = []
    evaluate = teacher_metric.evaluate_teacher
    monkeypatch.setattr(teacher_metric, 'evaluate_teacher',
                        lambda *args: calls.append(1) or evaluate(*args))

    first = train(_digits_cfg('kd_resnet20_resnet8_digits.py', tmp_path / 'a', ckpt, cache))
    assert calls == [1]                                   # one evaluation, two validations
    assert 'evaluated' in _hook(first).source
    entries = read_cache(str(cache))
    assert len(entries) == 1
    metrics = next(iter(entries.values()))['metrics']
    assert 0 <= metrics['accuracy/top1'] <= 100
    assert first.message_hub.get_scalar('val/teacher/accuracy/top1').current() == \
        pytest.approx(metrics['accuracy/top1'])

    second = train(_digits_cfg('kd_resnet20_resnet8_digits.py', tmp_path / 'b', ckpt, cache))
    assert calls == [1]                                   # cache hit: no evaluation
    assert 'cached' in _hook(second).source
    assert second.message_hub.get_scalar('val/teacher/accuracy/top1').current() == \
        pytest.approx(metrics['accuracy/top1'])
    # The evaluation left the random generators alone: both runs trained identically.
    for key, value in first.model.student.state_dict().items():
        torch.testing.assert_close(second.model.student.state_dict()[key], value, msg=key)

    # Another validation setup is another key.
    cfg = _digits_cfg('at_resnet20_resnet8_digits.py', tmp_path / 'c', ckpt, cache)
    cfg.val_evaluator = dict(type='TopKAccuracy', topk=(1,))
    train(cfg)
    assert calls == [1, 1] and len(read_cache(str(cache))) == 2


def test_plain_task_models_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.delenv('KDBENCH_CACHE_DIR', raising=False)
    cfg = load_config(os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py'),
                      {'log_level': 'WARNING'}, str(tmp_path / 'run'))
    cfg.train_cfg = dict(by_epoch=False, max_iters=1, val_interval=1)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False, interval=1)
    cfg.log_processor = dict(by_epoch=False)
    runner = train(cfg)
    assert _hook(runner).metrics is None
    assert not os.path.exists(tmp_path / 'teacher_metrics.json')     # the default cache
    assert 'val/teacher/accuracy/top1' not in runner.message_hub.log_scalars
