"""kdbench/task.py: the contract both task plugins implement and the core reads."""
import pytest
import torch
from torch import nn

import tasks.segmentation  # noqa: F401
from kdbench.registry import MODELS
from kdbench.task import TaskModel, TaskSpec, check_class_taps, labels, task_of

NORMALISE = dict(type='ImgDataPreprocessor', mean=[128.0] * 3, std=[64.0] * 3)
CLASSIFIER = dict(type='ImageClassifier', net=dict(type='resnet8', num_classes=7),
                  data_preprocessor=NORMALISE)
SEGMENTOR = dict(type='DeepLabV3PlusSegmentor', encoder='resnet18', num_classes=5,
                 data_preprocessor=NORMALISE)


def test_both_shipped_task_models_declare_their_task():
    assert task_of(MODELS.build(CLASSIFIER), 'student') == TaskSpec(
        'classification', num_classes=7)
    assert task_of(MODELS.build(SEGMENTOR), 'student') == TaskSpec(
        'segmentation', dense=True, num_classes=5, ignore_index=255)


@pytest.mark.parametrize('cfg, target_shape', [(CLASSIFIER, (3,)), (SEGMENTOR, (3, 32, 32))])
def test_example_batches_have_the_dataloaders_layout(cfg, target_shape):
    model = MODELS.build(cfg)
    batch = model.example_batch(3, 32, torch.Generator().manual_seed(0))
    assert batch['inputs'].shape == (3, 3, 32, 32) and batch['inputs'].dtype == torch.uint8
    target = labels(batch['data_samples'])
    assert target.shape == target_shape
    valid = target[target != 255]
    assert valid.min() >= 0 and valid.max() < model.task.num_classes
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())


def test_dense_example_batches_mark_some_pixels_ignored():
    batch = MODELS.build(SEGMENTOR).example_batch(2, 64, torch.Generator().manual_seed(0))
    ignored = (labels(batch['data_samples']) == 255).float().mean()
    assert 0.02 < ignored < 0.08


def test_labels_names_the_missing_key():
    with pytest.raises(KeyError, match=r"KD reads the batch's targets from "
                                       r"data_samples\['label'\].*found \['mask'\]"):
        labels({'mask': torch.zeros(2)}, 'KD')
    with pytest.raises(KeyError, match='found list'):
        labels([{'label': 1}], 'KD')


def test_a_model_outside_the_contract_is_named():
    with pytest.raises(TypeError, match='The student model Linear does not implement the task '
                                        'contract: derive it from kdbench.task.TaskModel'):
        task_of(nn.Linear(2, 2), 'student')

    class NoSpec(TaskModel):
        def forward(self, inputs, data_samples=None, mode='tensor'):
            return inputs
    with pytest.raises(NotImplementedError, match='NoSpec must declare its TaskSpec'):
        task_of(NoSpec(), 'teacher')


def test_teacher_and_student_of_different_tasks_are_refused():
    with pytest.raises(ValueError, match='The teacher is a segmentation model and the student '
                                         'a classification model'):
        check_class_taps(TaskSpec('classification', num_classes=3),
                         TaskSpec('segmentation', dense=True, num_classes=3), {})
