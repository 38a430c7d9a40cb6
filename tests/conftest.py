"""Shared fixtures: tiny classifier configs and teacher checkpoints written to tmp_path."""
import os

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

import kdbench.distill  # noqa: E402,F401  (fills DISTILL_METHODS and registers Distiller)
import tasks.classification  # noqa: E402,F401  (fills MODELS with networks and the classifier)
from kdbench.registry import MODELS  # noqa: E402
from kdbench.testing import write_random_teacher  # noqa: E402


def make_classifier_cfg(arch: str = 'resnet8', num_classes: int = 10) -> dict:
    """Config of a small classification task model."""
    return dict(type='ImageClassifier', net=dict(type=arch, num_classes=num_classes))


@pytest.fixture
def tiny_classifier_cfg():
    """Factory: ``tiny_classifier_cfg(arch='resnet8', num_classes=10)`` -> model config dict."""
    return make_classifier_cfg


@pytest.fixture
def teacher_ckpt(tmp_path):
    """Factory: ``teacher_ckpt(cfg, name='teacher.pth', seed=0)`` writes the task model of
    ``cfg`` with random weights to ``tmp_path / name``
    (:func:`kdbench.testing.write_random_teacher`) and returns the file's path (str)."""
    def make(cfg: dict, name: str = 'teacher.pth', seed: int = 0) -> str:
        return write_random_teacher(cfg, str(tmp_path / name), seed)
    return make


@pytest.fixture
def config_step(teacher_ckpt):
    """Factory: ``config_step(path, edit=None)`` builds the Distiller of a shipped config
    with its real networks (teacher weights from :func:`teacher_ckpt`; ``edit(model_cfg)``
    may adjust the config dict first), runs one training-mode loss on 2 random images
    (32x32, 64x64 for ImageNet configs), backpropagates it and returns
    ``(distiller, losses)``."""
    from mmengine.config import Config

    def step(path: str, edit=None):
        model_cfg = Config.fromfile(path).model.to_dict()
        if edit is not None:
            edit(model_cfg)
        model_cfg['teacher_ckpt'] = teacher_ckpt(model_cfg['teacher'])
        distiller = MODELS.build(model_cfg)
        side = 64 if 'imagenet' in path else 32
        inputs = torch.randint(0, 256, (2, 3, side, side), dtype=torch.uint8)
        data = distiller.data_preprocessor(dict(inputs=inputs, data_samples=dict(
            label=torch.tensor([1, 3]))), True)
        distiller.train()
        losses = distiller(**data, mode='loss')
        sum(losses.values()).backward()
        return distiller, losses
    return step
