"""ShuffleNetV1 (Zhang et al., 2018), 3 groups, for 32x32 inputs (the KD literature's
CIFAR ``ShuffleV1``).

A 1x1 stem (3 -> 24, BN-ReLU, no max pool), three stages of 4, 8, 4 units with 240, 480, 960
output channels, global average pooling and a linear classifier. The first unit of a stage
has stride 2 and concatenates a 3x3 average-pooled shortcut with its residual branch
(``out - in`` channels); the other units add an identity shortcut. A unit's bottleneck is a
quarter of its residual-branch width. As in the KD literature's model, the depthwise conv
is followed by BN *and* ReLU (the paper has no ReLU there).

Taps: ``stage1..3`` are the stage outputs (post-ReLU, strides 2, 4, 8); ``stage3`` is also
``pre_pool`` (``[N, 960, H/8, W/8]``), the map CAT-KD builds class activation maps from.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS

from .tap_tables import gap_linear_taps


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """Interleave the channels of ``groups`` equal groups: ``[N, C, H, W]`` -> same shape."""
    if groups == 1:
        return x
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """Grouped 1x1-BN-ReLU, channel shuffle, depthwise 3x3-BN-ReLU (``stride``), grouped
    1x1-BN; then ``relu(branch + x)`` (stride 1) or ``relu(cat(branch, avgpool(x)))``
    (stride 2).

    Args:
        in_channels: input channels.
        out_channels: output channels of the unit (shortcut included).
        stride: 1 or 2.
        groups: groups of the 1x1 convs.
        group_first: group the first 1x1 conv (not done on the 24-channel stem output).

    Shapes: ``[N, C_in, H, W]`` -> ``[N, C_out, H/stride, W/stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int,
                 group_first: bool = True):
        super().__init__()
        if stride not in (1, 2) or (stride == 1 and in_channels != out_channels):
            raise ValueError('A stride-1 ShuffleNet unit keeps its width; stride must be 1 '
                             f'or 2 (got {in_channels} -> {out_channels}, stride {stride}).')
        branch = out_channels - in_channels if stride == 2 else out_channels
        mid = branch // 4
        self.first_groups = groups if group_first else 1
        self.conv1 = nn.Conv2d(in_channels, mid, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(mid, branch, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(branch)
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else None
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = channel_shuffle(self.relu1(self.bn1(self.conv1(x))), self.first_groups)
        out = self.bn3(self.conv3(self.relu2(self.bn2(self.conv2(out)))))
        if self.shortcut is None:
            return self.relu(out + x)
        return self.relu(torch.cat([out, self.shortcut(x)], 1))


class ShuffleNetV1(nn.Module):
    """CIFAR ShuffleNetV1.

    Args:
        num_classes: classifier outputs ``K``.
        stage_channels: output channels of the three stages.
        stage_units: units per stage.
        groups: groups of the 1x1 convs.

    Shapes: ``[N, 3, H, W]`` -> logits ``[N, K]``; ``pre_pool`` ``[N, 960, H/8, W/8]``.
    """

    #: kdbench key -> key of the KD literature's model (RepDistiller's ``ShuffleNetv1.py``).
    RELEASED_KEY_MAP = ((r'^fc\.', 'linear.'),)

    def __init__(self, num_classes: int = 100, stage_channels: Sequence[int] = (240, 480, 960),
                 stage_units: Sequence[int] = (4, 8, 4), groups: int = 3):
        super().__init__()
        stem = 24
        self.conv1 = nn.Conv2d(3, stem, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU()
        stages, in_channels = [], stem
        for i, (channels, units) in enumerate(zip(stage_channels, stage_units), 1):
            layers = []
            for u in range(units):
                layers.append(ShuffleUnit(in_channels, channels, 2 if u == 0 else 1, groups,
                                          group_first=not (i == 1 and u == 0)))
                in_channels = channels
            self.add_module(f'layer{i}', nn.Sequential(*layers))
            stages.append(TapPoint(f'layer{i}', channels, 2 ** i))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        self.tap_points = gap_linear_taps(stages, stages[-1], num_classes,
                                          stem=TapPoint('relu', stem, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@MODELS.register_module()
def shufflenetv1(num_classes: int = 100) -> ShuffleNetV1:
    """CIFAR ShuffleNetV1, 3 groups, stages 240/480/960 with 4/8/4 units."""
    return ShuffleNetV1(num_classes)
