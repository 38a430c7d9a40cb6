"""MobileNetV1 (Howard et al., 2017) for ImageNet, the ImageNet student of the KD
literature (torchvision has none).

A stride-2 3x3 stem (32 channels, BN-ReLU), thirteen depthwise-separable blocks
(depthwise 3x3-BN-ReLU, pointwise 1x1-BN-ReLU), global average pooling and a linear
classifier. The layers are ``model.0`` (stem) .. ``model.13`` and ``fc``, the state-dict
layout of the MobileNetV1 used in the KD literature's ImageNet experiments, so such a
checkpoint loads through ``weights``.

Taps (post-ReLU; the last block of each resolution, 224x224 sizes):

======  =========  ========  ======  =========
tap     module     channels  stride  size
======  =========  ========  ======  =========
stem    model.0    32        2       112x112
stage1  model.3    128       4       56x56
stage2  model.5    256       8       28x28
stage3  model.11   512       16      14x14
stage4  model.13   1024      32      7x7
======  =========  ========  ======  =========

``stage4`` is also ``pre_pool``, the map CAT-KD builds class activation maps from.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS
from kdbench.utils.weights import load_task_weights

from .tap_tables import gap_linear_taps

#: ``(out_channels, stride)`` of the thirteen depthwise-separable blocks.
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
          (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _separable(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3-BN-ReLU (``stride``), pointwise 1x1-BN-ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, stride, 1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels), nn.ReLU(),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU())


class MobileNetV1(nn.Module):
    """MobileNetV1 (width 1).

    Args:
        num_classes: classifier outputs ``K``.

    Shapes: ``[N, 3, H, W]`` -> logits ``[N, K]``; ``pre_pool`` ``[N, 1024, H/32, W/32]``.
    """

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32),
                                nn.ReLU())]
        in_channels, stride, stages = 32, 2, []
        for i, (channels, s) in enumerate(BLOCKS, 1):
            layers.append(_separable(in_channels, channels, s))
            stride *= s
            last_of_resolution = i == len(BLOCKS) or BLOCKS[i][1] != 1
            if last_of_resolution and stride >= 4:
                stages.append(TapPoint(f'model.{i}', channels, stride))
            in_channels = channels
        self.model = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        self.tap_points = gap_linear_taps(stages, stages[-1], num_classes,
                                          stem=TapPoint('model.0', 32, 2))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.avgpool(self.model(x)), 1))


@MODELS.register_module()
def mobilenetv1(num_classes: int = 1000, weights: Optional[str] = None) -> MobileNetV1:
    """ImageNet MobileNetV1; ``weights``: ``None`` (random init) or a weight name (a local
    file of this layout or a kdbench checkpoint, or a URL; docs/weights.md), loaded
    strictly."""
    model = MobileNetV1(num_classes)
    if weights is not None:
        load_task_weights(model, weights, owner='pretrained network', source='net.weights')
    return model
