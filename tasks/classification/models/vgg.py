"""VGG with batch norm for 32x32 inputs, as in the KD literature (``vgg8``, ``vgg13``).

Five blocks of conv3x3(+bias)-BN-ReLU; 2x2 max pooling after blocks 0, 1 and 2; global
average pooling and one linear layer (no fully connected stack). The KD literature's CIFAR
VGG applies the max pool after block 3 only to 64x64 inputs, so at 32x32 blocks 3 and 4
both run at stride 8 (4x4 maps); ``pool_block3=True`` adds that pool (stride 16, 2x2 at
32x32, the layout for 64x64 inputs).

Taps: ``stage1..5`` are the post-ReLU outputs of ``block0..block4`` (before the pools);
``pre_pool`` is ``block4`` (512 channels), the map CAT-KD builds class activation maps from.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS

from .tap_tables import gap_linear_taps

#: Conv widths per block.
VGG_CFGS = {
    'vgg8': ((64,), (128,), (256,), (512,), (512,)),
    'vgg13': ((64, 64), (128, 128), (256, 256), (512, 512), (512, 512)),
}


def _conv_block(in_channels: int, widths: Sequence[int]) -> nn.Sequential:
    """conv3x3-BN-ReLU per width; the block's output is post-ReLU."""
    layers = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width),
                   nn.ReLU()]
        in_channels = width
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """CIFAR VGG-BN.

    Args:
        cfg: five tuples of conv widths (the last width of block 4 is the feature width).
        num_classes: classifier outputs ``K``.
        pool_block3: max-pool after block 3 too (the literature does so for 64x64 inputs).

    Shapes: ``[N, 3, H, W]`` -> logits ``[N, K]``; ``pre_pool``
    ``[N, 512, H/8, W/8]`` (``H/16`` with ``pool_block3``).
    """

    #: kdbench key -> key of the released CIFAR teachers (RepDistiller's ``vgg.py``).
    RELEASED_KEY_MAP = ((r'^fc\.', 'classifier.'),)

    def __init__(self, cfg: Sequence[Sequence[int]], num_classes: int = 100,
                 pool_block3: bool = False):
        super().__init__()
        if len(cfg) != 5:
            raise ValueError(f'VGG needs five blocks of conv widths, got {len(cfg)}.')
        n_pools = 4 if pool_block3 else 3
        stages, in_channels, stride = [], 3, 1
        for i, widths in enumerate(cfg):
            self.add_module(f'block{i}', _conv_block(in_channels, widths))
            stages.append(TapPoint(f'block{i}', widths[-1], stride))
            if i < n_pools:
                self.add_module(f'pool{i}', nn.MaxPool2d(2))
                stride *= 2
            in_channels = widths[-1]
        self.n_pools = n_pools
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)
        # No stem: block0 plays that role, so the hint (feature index 2) is block2.
        self.tap_points = gap_linear_taps(stages, stages[-1], num_classes, hint=stages[2])

    def forward(self, x: Tensor) -> Tensor:
        for i in range(5):
            x = getattr(self, f'block{i}')(x)
            if i < self.n_pools:
                x = getattr(self, f'pool{i}')(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _register(name: str) -> None:
    def build(num_classes: int = 100) -> VGG:
        return VGG(VGG_CFGS[name], num_classes)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f'CIFAR {name} with batch norm, widths {VGG_CFGS[name]}.'
    MODELS.register_module(name=name, module=build)


for _name in VGG_CFGS:
    _register(_name)
