"""Shared fixtures: tiny classifier configs and teacher checkpoints written to tmp_path."""
import os

os.environ.setdefault('NO_ALBUMENTATIONS_UPDATE', '1')

import pytest  # noqa: E402
import torch  # noqa: E402

import kdbench.distill  # noqa: E402,F401  (fills DISTILL_METHODS and registers Distiller)
import tasks.classification  # noqa: E402,F401  (fills MODELS with networks and the classifier)
from kdbench.registry import MODELS  # noqa: E402


def make_classifier_cfg(arch: str = 'resnet8', num_classes: int = 10) -> dict:
    """Config of a small classification task model."""
    return dict(type='ImageClassifier', net=dict(type=arch, num_classes=num_classes))


@pytest.fixture
def tiny_classifier_cfg():
    """Factory: ``tiny_classifier_cfg(arch='resnet8', num_classes=10)`` -> model config dict."""
    return make_classifier_cfg


@pytest.fixture
def teacher_ckpt(tmp_path):
    """Factory: ``teacher_ckpt(cfg, name='teacher.pth', seed=0)`` builds the task model of
    ``cfg``, saves ``{'state_dict': model.state_dict()}`` under ``tmp_path`` and returns the
    file's path (str)."""
    def make(cfg: dict, name: str = 'teacher.pth', seed: int = 0) -> str:
        torch.manual_seed(seed)
        model = MODELS.build(dict(cfg))
        path = tmp_path / name
        torch.save({'state_dict': model.state_dict()}, path)
        return str(path)
    return make
