"""ImageNet ResNets from torchvision, unmodified, with their tap table.

``weights`` may be ``None`` (random init) or a weight name (docs/weights.md): a local
checkpoint (a torchvision-format state dict or a kdbench checkpoint), ``torchvision://NAME``
or a URL, loaded strictly; a bare torchvision variant such as ``'IMAGENET1K_V1'`` stands for
``torchvision://<arch>.IMAGENET1K_V1`` (the classifier is replaced when ``num_classes``
differs from its 1000).
"""
from __future__ import annotations

from typing import Optional

import torchvision
from torch import nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS
from kdbench.utils.weights import load_task_weights

from .tap_tables import gap_linear_taps


def resnet_tap_points(stage_channels: tuple, num_classes: int) -> dict:
    """Tap table of a torchvision ResNet: stages are post-ReLU block outputs."""
    stages = [TapPoint(f'layer{i + 1}', c, 4 * 2 ** i) for i, c in enumerate(stage_channels)]
    return gap_linear_taps(stages, stages[-1], num_classes, stem=TapPoint('maxpool', 64, 4))


def _build(arch: str, expansion: int, num_classes: int, weights: Optional[str]) -> nn.Module:
    builder = getattr(torchvision.models, arch)
    if weights in torchvision.models.get_model_weights(arch).__members__:
        model = builder(weights=None)
        load_task_weights(model, f'torchvision://{arch}.{weights}', owner='pretrained network',
                          source='net.weights')
        if num_classes != model.fc.out_features:
            model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:
        model = builder(weights=None, num_classes=num_classes)
        if weights is not None:
            load_task_weights(model, weights, owner='pretrained network', source='net.weights')
    channels = tuple(64 * 2 ** i * expansion for i in range(4))
    model.tap_points = resnet_tap_points(channels, num_classes)
    return model


def _register(arch: str, expansion: int) -> None:
    def build(num_classes: int = 1000, weights: Optional[str] = None) -> nn.Module:
        return _build(arch, expansion, num_classes, weights)
    build.__name__ = build.__qualname__ = f'tv_{arch}'
    build.__doc__ = f'torchvision {arch} (unmodified) with a kdbench tap table.'
    MODELS.register_module(name=f'tv_{arch}', module=build)


for _arch, _expansion in (('resnet18', 1), ('resnet34', 1), ('resnet50', 4)):
    _register(_arch, _expansion)
