"""Wide ResNets (Zagoruyko & Komodakis, 2016) for 32x32 inputs, as in the KD literature.

``wrn_{depth}_{widen}``: a 3x3 stem (16 channels), three groups of ``(depth - 4) / 6``
pre-activation basic blocks with widths ``16w, 32w, 64w`` and strides 1, 2, 2, then a final
BN-ReLU, global average pooling and a linear classifier; no dropout.

Taps: ``stage1..3`` are the block-group outputs, which are *pre-activation* (a residual
sum, may be negative; the next BN-ReLU is part of the following block), as the KD
literature distils them. ``pre_pool`` is the output of the final ReLU module ``relu``
(``[N, 64w, H/4, W/4]``), the map CAT-KD builds class activation maps from.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS

from .tap_tables import gap_linear_taps


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-conv3x3 with an identity or 1x1-conv shortcut.

    When the shape changes, the shortcut conv reads the block's pre-activated input
    (``relu(bn1(x))``), as in the original WRN; otherwise it is the raw input ``x``.

    Shapes: ``[N, C_in, H, W]`` -> ``[N, C_out, H/stride, W/stride]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        act = self.relu1(self.bn1(x))
        out = self.conv2(self.relu2(self.bn2(self.conv1(act))))
        return out + (x if self.shortcut is None else self.shortcut(act))


class WideResNet(nn.Module):
    """WRN-``depth``-``widen`` for 32x32 inputs.

    Args:
        depth: ``6n + 4`` (16, 22, 28, 40, ...).
        widen: width multiplier ``w``; group widths ``16w, 32w, 64w``.
        num_classes: classifier outputs ``K``.

    Shapes: ``[N, 3, H, W]`` -> logits ``[N, K]``; ``pre_pool`` ``[N, 64w, H/4, W/4]``.
    """

    #: kdbench key -> key of the released CIFAR teachers (RepDistiller's ``wrn.py``).
    RELEASED_KEY_MAP = ((r'^(block\d)\.', r'\1.layer.'), (r'\.shortcut\.', '.convShortcut.'),
                        (r'^bn\.', 'bn1.'))

    def __init__(self, depth: int, widen: int, num_classes: int = 100):
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise ValueError(f'WideResNet depth must be 6n+4 (10, 16, 22, 28, 40, ...), '
                             f'got {depth}.')
        blocks = (depth - 4) // 6
        widths = [16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        in_channels = 16
        for i, (width, stride) in enumerate(zip(widths, (1, 2, 2)), 1):
            group = [PreActBlock(in_channels if b == 0 else width, width,
                                 stride if b == 0 else 1) for b in range(blocks)]
            self.add_module(f'block{i}', nn.Sequential(*group))
            in_channels = width
        self.bn = nn.BatchNorm2d(widths[-1])
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
        stages = [TapPoint(f'block{i}', w, s) for i, (w, s) in enumerate(
            zip(widths, (1, 2, 4)), 1)]
        self.tap_points = gap_linear_taps(stages, TapPoint('relu', widths[-1], 4), num_classes,
                                          stem=TapPoint('conv1', 16, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = self.relu(self.bn(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _register(depth: int, widen: int) -> None:
    name = f'wrn_{depth}_{widen}'

    def build(num_classes: int = 100) -> WideResNet:
        return WideResNet(depth, widen, num_classes)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f'CIFAR WRN-{depth}-{widen} (pre-activation, no dropout).'
    MODELS.register_module(name=name, module=build)


for _depth, _widen in ((16, 2), (40, 1), (40, 2)):
    _register(_depth, _widen)
