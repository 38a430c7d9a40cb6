"""ShuffleNetV2 1x (Ma et al., 2018) for 32x32 inputs (the KD literature's CIFAR
``ShuffleV2``).

A stride-1 stem conv (3 -> 24, BN-ReLU, no max pool), three stages (116, 232, 464 channels)
of one stride-2 down-sampling unit followed by 3, 7, 3 basic units, a 1x1 conv to 1024
channels with BN-ReLU, global average pooling and a linear classifier. The KD literature's
model uses a 1x1 stem conv (``stem_kernel=1``, the default); ``stem_kernel=3`` gives the
3x3 stem of the ImageNet design.

Taps: ``stage1..3`` are the stage outputs (strides 2, 4, 8; every channel is post-ReLU);
``pre_pool`` is the post-ReLU output of ``relu2`` (``[N, 1024, H/8, W/8]``), the map CAT-KD
builds class activation maps from.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS

from .shufflenetv1 import channel_shuffle
from .tap_tables import gap_linear_taps


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1,
             depthwise: bool = False, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2,
                        groups=in_channels if depthwise else 1, bias=False),
              nn.BatchNorm2d(out_channels)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BasicUnit(nn.Module):
    """Split the channels in half; one half passes, the other goes through 1x1-BN-ReLU,
    depthwise 3x3-BN, 1x1-BN-ReLU; concatenate and shuffle (2 groups).

    Shapes: ``[N, C, H, W]`` -> ``[N, C, H, W]``.
    """

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(_conv_bn(half, half, 1),
                                    _conv_bn(half, half, 3, depthwise=True, relu=False),
                                    _conv_bn(half, half, 1))

    def forward(self, x: Tensor) -> Tensor:
        keep, active = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat([keep, self.branch(active)], 1), 2)


class DownUnit(nn.Module):
    """Both branches see the full input: left = depthwise 3x3 s2-BN, 1x1-BN-ReLU; right =
    1x1-BN-ReLU, depthwise 3x3 s2-BN, 1x1-BN-ReLU; concatenate and shuffle (2 groups).

    Shapes: ``[N, C_in, H, W]`` -> ``[N, C_out, H/2, W/2]``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        half = out_channels // 2
        self.left = nn.Sequential(
            _conv_bn(in_channels, in_channels, 3, 2, depthwise=True, relu=False),
            _conv_bn(in_channels, half, 1))
        self.right = nn.Sequential(_conv_bn(in_channels, half, 1),
                                   _conv_bn(half, half, 3, 2, depthwise=True, relu=False),
                                   _conv_bn(half, half, 1))

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(torch.cat([self.left(x), self.right(x)], 1), 2)


class ShuffleNetV2(nn.Module):
    """CIFAR ShuffleNetV2.

    Args:
        num_classes: classifier outputs ``K``.
        stage_channels: output channels of the three stages.
        stage_units: basic units per stage (after its down-sampling unit).
        last_channels: width of the final 1x1 conv.
        stem_kernel: kernel size of the stride-1 stem conv.

    Shapes: ``[N, 3, H, W]`` -> logits ``[N, K]``; ``pre_pool``
    ``[N, last_channels, H/8, W/8]``.
    """

    #: kdbench key -> key of the KD literature's model (RepDistiller's ``ShuffleNetv2.py``):
    #: a down-sampling unit's ``left.0, left.1, right.0..2`` are its ``conv1..5``/``bn1..5``,
    #: a basic unit's ``branch.0..2`` its ``conv1..3``/``bn1..3``.
    RELEASED_KEY_MAP = (
        (r'\.(left|right|branch)\.(\d)\.([01])\.',
         lambda m: '.{}{}.'.format('bn' if m[3] == '1' else 'conv',
                                   int(m[2]) + (3 if m[1] == 'right' else 1))),
        (r'^fc\.', 'linear.'))

    def __init__(self, num_classes: int = 100, stage_channels: Sequence[int] = (116, 232, 464),
                 stage_units: Sequence[int] = (3, 7, 3), last_channels: int = 1024,
                 stem_kernel: int = 1):
        super().__init__()
        stem = 24
        self.conv1 = nn.Conv2d(3, stem, stem_kernel, 1, stem_kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu1 = nn.ReLU()
        stages, in_channels = [], stem
        for i, (channels, units) in enumerate(zip(stage_channels, stage_units), 1):
            layers = [DownUnit(in_channels, channels)]
            layers += [BasicUnit(channels) for _ in range(units)]
            self.add_module(f'layer{i}', nn.Sequential(*layers))
            stages.append(TapPoint(f'layer{i}', channels, 2 ** i))
            in_channels = channels
        self.conv2 = nn.Conv2d(in_channels, last_channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(last_channels)
        self.relu2 = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(last_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        pre_pool = TapPoint('relu2', last_channels, stages[-1].stride)
        self.tap_points = gap_linear_taps(stages, pre_pool, num_classes,
                                          stem=TapPoint('relu1', stem, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@MODELS.register_module()
def shufflenetv2(num_classes: int = 100) -> ShuffleNetV2:
    """CIFAR ShuffleNetV2 1x: stages 116/232/464 with 3/7/3 basic units, 1024-wide head."""
    return ShuffleNetV2(num_classes)
