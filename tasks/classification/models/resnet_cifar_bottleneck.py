"""Bottleneck ResNet-50 for 32x32 inputs (the KD literature's CIFAR ``ResNet50`` teacher).

A stride-1 3x3 stem (64 channels, BN-ReLU, no max pool), four stages of 3, 4, 6, 3
bottlenecks (widths 64, 128, 256, 512, expansion 4, strides 1, 2, 2, 2), global average
pooling and a linear classifier.

Taps: ``stage1..4`` are the post-ReLU stage outputs (256..2048 channels, strides 1, 2, 4,
8); ``stage4`` is also ``pre_pool`` (``[N, 2048, H/8, W/8]``), the map CAT-KD builds class
activation maps from.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS

from .tap_tables import gap_linear_taps


class Bottleneck(nn.Module):
    """1x1-BN-ReLU, 3x3 (``stride``)-BN-ReLU, 1x1 (x4)-BN; ``relu(path + shortcut)`` with a
    1x1-conv-BN projection shortcut when the shape changes.

    Shapes: ``[N, C_in, H, W]`` -> ``[N, 4 * width, H/stride, W/stride]``.
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int = 1):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class CifarBottleneckResNet(nn.Module):
    """Bottleneck ResNet for 32x32 inputs.

    Args:
        blocks: bottlenecks per stage.
        num_classes: classifier outputs ``K``.

    Shapes: ``[N, 3, H, W]`` -> logits ``[N, K]``; ``pre_pool`` ``[N, 2048, H/8, W/8]``.
    """

    #: kdbench key -> key of the released CIFAR teachers (RepDistiller's ``resnetv2.py``).
    RELEASED_KEY_MAP = ((r'^fc\.', 'linear.'),)

    def __init__(self, blocks: Sequence[int] = (3, 4, 6, 3), num_classes: int = 100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        stages, in_channels = [], 64
        for i, n in enumerate(blocks):
            width, stride = 64 * 2 ** i, 1 if i == 0 else 2
            layers = []
            for b in range(n):
                layers.append(Bottleneck(in_channels, width, stride if b == 0 else 1))
                in_channels = width * Bottleneck.expansion
            self.add_module(f'layer{i + 1}', nn.Sequential(*layers))
            stages.append(TapPoint(f'layer{i + 1}', in_channels, 2 ** i))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        self.tap_points = gap_linear_taps(stages, stages[-1], num_classes,
                                          stem=TapPoint('relu', 64, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@MODELS.register_module()
def resnet50_cifar(num_classes: int = 100) -> CifarBottleneckResNet:
    """CIFAR ResNet-50: bottlenecks [3, 4, 6, 3], stride-1 stem, no max pool."""
    return CifarBottleneckResNet((3, 4, 6, 3), num_classes)
