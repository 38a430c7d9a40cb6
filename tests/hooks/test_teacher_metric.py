"""TeacherMetricHook: the teacher's validation metrics logged beside the student's,
evaluated once per teacher checkpoint and validation setup, then read from the cache."""
import os

import pytest
import torch
from shared_setup import ROOT

import kdbench.hooks.teacher_metric as teacher_metric
from kdbench.apis import load_config, train
from kdbench.hooks.teacher_metric import TeacherMetricHook, read_cache


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


def _voc_runner(root, ckpt):
    """A stand-in runner validating on the VOC folder ``root`` (what the hook reads)."""
    from types import SimpleNamespace

    from mmengine.config import Config
    from mmengine.logging import MMLogger

    from tasks.segmentation.datasets import VOCAugDataset
    dataset_cfg = dict(type='VOCAugDataset', data_root=str(root), split='val')
    cfg = Config(dict(model=dict(type='Distiller', teacher=dict(type='Segmentor')),
                      val_dataloader=dict(dataset=dataset_cfg), val_evaluator=dict()))
    loader = SimpleNamespace(dataset=VOCAugDataset(str(root), split='val'))
    return SimpleNamespace(cfg=cfg, val_loop=SimpleNamespace(dataloader=loader),
                           logger=MMLogger.get_current_instance(), work_dir=str(root))


def test_an_edited_val_split_is_evaluated_again(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from tests.segmentation.seg_data import write_voc
    write_voc(tmp_path / 'voc', n=3)
    ckpt = tmp_path / 'teacher.pth'
    ckpt.write_bytes(b'weights')
    model = SimpleNamespace(teacher_ckpt=str(ckpt))
    # The "teacher's score" is the number of validation images it saw.
    monkeypatch.setattr(teacher_metric, 'evaluate_teacher',
                        lambda runner, model: {'mIoU': len(runner.val_loop.dataloader.dataset)})
    cache = str(tmp_path / 'cache.json')

    def score():
        return TeacherMetricHook(cache).teacher_metrics(_voc_runner(tmp_path / 'voc', ckpt),
                                                        model)['mIoU']
    assert score() == 3 and score() == 3 and len(read_cache(cache)) == 1
    (tmp_path / 'voc/ImageSets/Segmentation/val.txt').write_text('img_0\nimg_1\n')
    assert score() == 2                                       # recomputed, not the cached 3
    os.utime(tmp_path / 'voc/SegmentationClassAug/img_0.png', ns=(1, 1))
    assert score() == 2 and len(read_cache(cache)) == 3       # a changed label file: a new key
