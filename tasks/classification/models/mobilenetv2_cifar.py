"""Half-width MobileNetV2 for 32x32 inputs (the KD literature's CIFAR ``MobileNetV2``).

Width multiplier 0.5, expansion 6: a stride-2 3x3 stem (16 channels), seventeen inverted
residual blocks, a 1x1 conv to 1280 channels with BN-ReLU, global average pooling and a
linear classifier. As in the KD literature's model, every block keeps its 1x1 expansion
conv, also in the first (``t = 1``) group, where it maps 16 -> 16 channels.

Stages (groups of the inverted-residual settings, ending where the resolution next drops,
as the KD literature reads its features; channels at width 0.5):

======  ==========================  ========  ======
tap     settings ``(t, c, n, s)``   channels  stride
======  ==========================  ========  ======
stage1  (1,16,1,1), (6,24,2,1)      12        2
stage2  (6,32,3,2)                  16        4
stage3  (6,64,4,2), (6,96,3,1)      48        8
stage4  (6,160,3,2), (6,320,1,1)    160       16
======  ==========================  ========  ======

Stage outputs are linear bottlenecks (no activation, may be negative). ``pre_pool`` is the
post-ReLU output of ``head`` (``[N, 1280, H/16, W/16]``), the map CAT-KD builds class
activation maps from.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS

from .tap_tables import gap_linear_taps

#: ``(t, c, n, s)`` per setting at width 1, grouped into the four tapped stages.
STAGE_SETTINGS = (
    ((1, 16, 1, 1), (6, 24, 2, 1)),
    ((6, 32, 3, 2),),
    ((6, 64, 4, 2), (6, 96, 3, 1)),
    ((6, 160, 3, 2), (6, 320, 1, 1)),
)


def _setting_blocks() -> dict:
    """``(stage, block in stage)`` -> ``(setting, block in setting)``: the KD literature's
    model keeps one ``blocks.<setting>`` list per row of the settings table."""
    table, setting = {}, 0
    for stage, settings in enumerate(STAGE_SETTINGS, 1):
        block = 0
        for _, _, n, _ in settings:
            for j in range(n):
                table[stage, block] = (setting, j)
                block += 1
            setting += 1
    return table


_SETTING_BLOCK = _setting_blocks()
#: Offsets of a block's layers in the KD literature's ``conv`` sequence
#: (1x1-BN-ReLU, 3x3 dw-BN-ReLU, 1x1-BN).
_CONV_OFFSET = dict(expand=0, depthwise=3, project=6)


def _released_block(match) -> str:
    setting, block = _SETTING_BLOCK[int(match[1]), int(match[2])]
    return f'blocks.{setting}.{block}.conv.{_CONV_OFFSET[match[3]] + int(match[4])}.'


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1,
             groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups,
                        bias=False), nn.BatchNorm2d(out_channels)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """1x1 expand-BN-ReLU, 3x3 depthwise-BN-ReLU (``stride``), 1x1 project-BN (linear);
    identity residual when ``stride == 1`` and the width is kept.

    Shapes: ``[N, C_in, H, W]`` -> ``[N, C_out, H/stride, W/stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int):
        super().__init__()
        hidden = in_channels * expansion
        self.expand = _conv_bn(in_channels, hidden, 1)
        self.depthwise = _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        self.project = _conv_bn(hidden, out_channels, 1, relu=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class MobileNetV2Cifar(nn.Module):
    """MobileNetV2 for CIFAR.

    Args:
        num_classes: classifier outputs ``K``.
        width: width multiplier of the stem and the blocks (0.5 in the KD literature).
        expansion: expansion ratio ``t`` of every group but the first.
        last_channels: width of the final 1x1 conv.

    Shapes: ``[N, 3, H, W]`` -> logits ``[N, K]``; ``pre_pool``
    ``[N, last_channels, H/16, W/16]``.
    """

    #: kdbench key -> key of the released CIFAR teachers' model (RepDistiller's
    #: ``mobilenetv2.py``): ``stem``/``head``/``fc`` are ``conv1``/``conv2``/``classifier.0``,
    #: ``stage{k}.{m}.{expand,depthwise,project}.{0,1}`` are ``blocks.i.j.conv.{0,1/3,4/6,7}``.
    RELEASED_KEY_MAP = ((r'^stage(\d)\.(\d+)\.(expand|depthwise|project)\.(\d)\.', _released_block),
                        (r'^stem\.', 'conv1.'), (r'^head\.', 'conv2.'), (r'^fc\.', 'classifier.0.'))

    def __init__(self, num_classes: int = 100, width: float = 0.5, expansion: int = 6,
                 last_channels: int = 1280):
        super().__init__()
        in_channels = int(32 * width)
        self.stem = _conv_bn(3, in_channels, 3, stride=2)
        stages, stride = [], 2
        for i, settings in enumerate(STAGE_SETTINGS, 1):
            blocks = []
            for t, c, n, s in settings:
                t = t if t == 1 else expansion
                out_channels = int(c * width)
                for b in range(n):
                    blocks.append(InvertedResidual(in_channels, out_channels,
                                                   s if b == 0 else 1, t))
                    in_channels = out_channels
                stride *= s
            self.add_module(f'stage{i}', nn.Sequential(*blocks))
            stages.append(TapPoint(f'stage{i}', in_channels, stride))
        self.head = _conv_bn(in_channels, last_channels, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(last_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        self.tap_points = gap_linear_taps(
            stages, TapPoint('head', last_channels, stride), num_classes,
            stem=TapPoint('stem', int(32 * width), 2))

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.stage4(self.stage3(self.stage2(self.stage1(x))))
        x = self.head(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


@MODELS.register_module()
def mobilenetv2_cifar(num_classes: int = 100) -> MobileNetV2Cifar:
    """Half-width CIFAR MobileNetV2 (width 0.5, expansion 6), the KD literature's student."""
    return MobileNetV2Cifar(num_classes)
