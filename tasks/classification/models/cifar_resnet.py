"""CIFAR ResNets (He et al. 2016, CIFAR variant) as used in the KD literature.

``resnet{8,14,20,32,44,56,110}``: widths 16-16-32-64; ``resnet8x4``/``resnet32x4``:
widths 32-64-128-256 (RepDistiller). Three stages of basic blocks, ``(depth - 2) / 6``
blocks each; every stage output is post-ReLU, so taps read the features AT and CAT-KD
distil. Global pooling is a module, so ``pre_logits`` (``[N, C, 1, 1]``) can be tapped.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS

from .tap_tables import gap_linear_taps


class BasicBlock(nn.Module):
    """3x3-3x3 residual block; the output is ``relu(conv path + shortcut)``."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet for 32x32 inputs: stem (stride 1), three stages (strides 1, 2, 4), GAP, FC.

    Args:
        depth: ``6n + 2``.
        widths: stem width and the three stage widths.
        num_classes: classifier outputs.

    Shapes: ``[N, 3, H, W]`` -> logits ``[N, num_classes]``; ``last_stage`` tap
    ``[N, widths[3], H/4, W/4]``.
    """

    #: kdbench key -> key of the released CIFAR teachers (RepDistiller's ``resnet.py``).
    RELEASED_KEY_MAP = ((r'\.shortcut\.', '.downsample.'),)

    def __init__(self, depth: int, widths: Sequence[int] = (16, 16, 32, 64),
                 num_classes: int = 100):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f'CifarResNet depth must be 6n+2 (8, 14, 20, 32, ...), got {depth}.')
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        stages, in_channels = [], widths[0]
        for i, channels in enumerate(widths[1:]):
            layers = []
            for b in range(blocks):
                layers.append(BasicBlock(in_channels, channels, 2 if (i > 0 and b == 0) else 1))
                in_channels = channels
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        stages = [TapPoint(f'layer{i}', widths[i], 2 ** (i - 1)) for i in (1, 2, 3)]
        self.tap_points = gap_linear_taps(stages, stages[-1], num_classes,
                                          stem=TapPoint('relu', widths[0], 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _register(name: str, depth: int, widths: Sequence[int]) -> None:
    def build(num_classes: int = 100) -> CifarResNet:
        return CifarResNet(depth, widths, num_classes)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f'CIFAR {name}: depth {depth}, widths {tuple(widths)}.'
    MODELS.register_module(name=name, module=build)


for _depth in (8, 14, 20, 32, 44, 56, 110):
    _register(f'resnet{_depth}', _depth, (16, 16, 32, 64))
for _depth in (8, 32):
    _register(f'resnet{_depth}x4', _depth, (32, 64, 128, 256))
