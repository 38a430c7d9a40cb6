"""A third task that lives only in the tests: per-pixel regression of a "depth" map.

It exists to prove that kdbench's task contract (kdbench/task.py, docs/tasks.md) is
enough: nothing under kdbench/ knows it, and it trains, evaluates and prints its recipe
card through tools/train.py, tools/test.py and tools/recipe.py with the feature methods
(AT, FitNet, TaT, CWD on features). Configs load it with
``custom_imports=dict(imports=['third_task'])`` (``tests/`` on ``PYTHONPATH``).

Data: ``ShadedBlobs``, images of a few Gaussian blobs whose height is the target
(``[H, W]`` float in [0, 1]); the image shows the height as shading in a random colour,
with noise. Model: ``PixelRegressor``, a small conv net at full resolution with stride-2
stages and a 1x1 head upsampled back. Metric: ``PixelMAE`` (lower is better).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric
from torch import Tensor, nn
from torch.utils.data import Dataset

from kdbench.distill.taps import TapPoint
from kdbench.registry import DATASETS, METRICS, MODELS
from kdbench.task import TaskModel, TaskSpec, labels

SPLIT_SEEDS = {'train': 0, 'test': 1}


def shaded_blobs(count: int, size: int, generator: torch.Generator):
    """``count`` images ``uint8 [count, 3, size, size]`` and heights ``[count, size, size]``."""
    axis = torch.arange(size, dtype=torch.float32)
    heights = torch.zeros(count, size, size)
    for _ in range(3):
        centre = torch.rand(count, 2, generator=generator) * size
        radius = 2 + torch.rand(count, 1, 1, generator=generator) * size / 4
        dy = (axis[None, :, None] - centre[:, 0, None, None]) ** 2
        dx = (axis[None, None, :] - centre[:, 1, None, None]) ** 2
        heights = torch.maximum(heights, torch.exp(-(dy + dx) / (2 * radius ** 2)))
    colour = 0.3 + 0.7 * torch.rand(count, 3, 1, 1, generator=generator)
    noise = 0.05 * torch.randn(count, 3, size, size, generator=generator)
    images = ((heights[:, None] * colour + noise).clamp(0, 1) * 255).to(torch.uint8)
    return images, heights


@DATASETS.register_module()
class ShadedBlobs(Dataset):
    """In-memory scenes (``split`` 'train' or 'test', disjoint random streams); items
    ``dict(inputs=uint8 [3, S, S], data_samples=dict(label=float [S, S]))``."""

    def __init__(self, split: str = 'train', num_images: int = 32, size: int = 32):
        if split not in SPLIT_SEEDS:
            raise ValueError(f"ShadedBlobs split must be one of {list(SPLIT_SEEDS)}, got "
                             f"'{split}'.")
        generator = torch.Generator().manual_seed(SPLIT_SEEDS[split])
        self.images, self.heights = shaded_blobs(num_images, size, generator)
        self.metainfo = dict(task='pixel regression')

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Dict:
        return dict(inputs=self.images[index],
                    data_samples=dict(label=self.heights[index]))


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


@MODELS.register_module()
class PixelRegressor(TaskModel):
    """Stages of ``widths`` channels (stride 1, then 2 per stage), a 1x1 head and a
    bilinear upsampling to the input size; L1 loss on ``[N, H, W]`` heights.

    Modes: ``tensor`` -> ``[N, 1, H, W]``; ``loss`` -> ``{'loss_l1'}``; ``predict`` -> one
    ``dict(pred=[H, W], gt=[H, W])`` per image. Taps: ``stage1..``, ``last_stage``,
    ``hint`` (the second stage, FitNet's default) and ``output`` (the head, 1 channel).
    """

    def __init__(self, widths: Sequence[int] = (8, 16, 32),
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        chans = [3, *widths]
        self.stages = nn.Sequential(*(_block(chans[i], chans[i + 1], 1 if i == 0 else 2)
                                      for i in range(len(widths))))
        self.head = nn.Conv2d(widths[-1], 1, 1)
        self.tap_points = {f'stage{i + 1}': TapPoint(f'stages.{i}', c, 2 ** i)
                           for i, c in enumerate(widths)}
        self.tap_points.update(last_stage=self.tap_points[f'stage{len(widths)}'],
                               hint=self.tap_points['stage2'],
                               output=TapPoint('head', 1, 2 ** (len(widths) - 1)))

    @property
    def task(self) -> TaskSpec:
        return TaskSpec('pixel regression', dense=True, num_classes=None)

    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        pred = F.interpolate(self.head(self.stages(inputs)), size=inputs.shape[-2:],
                             mode='bilinear', align_corners=False)
        if mode == 'tensor':
            return pred
        target = labels(data_samples, 'PixelRegressor').float()
        if mode == 'loss':
            return {'loss_l1': F.l1_loss(pred[:, 0], target)}
        return [dict(pred=p[0].detach(), gt=t) for p, t in zip(pred, target)]

    def example_batch(self, batch_size: int, size: int,
                      generator: Optional[torch.Generator] = None) -> dict:
        images, heights = shaded_blobs(batch_size, size, generator or torch.Generator())
        return dict(inputs=images, data_samples=dict(label=heights))


@METRICS.register_module()
class PixelMAE(BaseMetric):
    """Mean absolute error over all pixels (``regression/mae``, lower is better)."""

    default_prefix = 'regression'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            error = (sample['pred'].float() - sample['gt'].float()).abs()
            self.results.append((float(error.sum()), error.numel()))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        return dict(mae=sum(e for e, _ in results) / sum(n for _, n in results))
