"""Per-sample outputs of a classification evaluation (``tools/test.py --out/--show-dir``):
top-k classes with probabilities, and grids of images captioned with them."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from kdbench.evaluation.samples import SampleWriter
from kdbench.registry import METRICS

TILE = 128          # image side in a grid tile, pixels
LINE = 12           # caption line height
GAP = 4             # white margin right of and below each tile


@METRICS.register_module()
class ClsSampleWriter(SampleWriter):
    """Per sample: ``label`` (ground truth), ``topk`` class ids, ``topk_names`` and
    ``topk_probs`` (softmax); pictures: 8 x 8 grids, each tile the image with the true
    class and the top-k predictions (green: correct, red: wrong).

    Args:
        topk: how many classes to keep per sample.
    """

    grid = 8

    def __init__(self, topk: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.topk = topk

    def _names(self, num_classes: int):
        return (self.dataset_meta or {}).get('classes') or [str(c) for c in range(num_classes)]

    def _top(self, output: dict):
        probs = torch.softmax(output['pred_score'].float().cpu(), dim=0)
        values, classes = probs.topk(min(self.topk, len(probs)))
        return classes.tolist(), values.tolist(), int(torch.as_tensor(output['gt_label']))

    def record(self, output: dict, inputs: Tensor, index: int) -> dict:
        classes, probs, label = self._top(output)
        names = self._names(len(output['pred_score']))
        return dict(label=label, topk=classes, topk_names=[str(names[c]) for c in classes],
                    topk_probs=probs)

    def draw(self, output: dict, inputs: Tensor, index: int) -> np.ndarray:
        classes, probs, label = self._top(output)
        names = self._names(len(output['pred_score']))
        image = Image.fromarray(inputs.cpu().numpy().transpose(1, 2, 0)).resize(
            (TILE, TILE), Image.NEAREST if inputs.shape[-1] < TILE else Image.BILINEAR)
        tile = Image.new('RGB', (TILE + GAP, TILE + LINE * (len(classes) + 1) + GAP), 'white')
        tile.paste(image, (0, 0))
        pen, font = ImageDraw.Draw(tile), ImageFont.load_default()
        pen.text((2, TILE), f'gt: {names[label]}'[:24], fill='black', font=font)
        for row, (c, p) in enumerate(zip(classes, probs), start=1):
            pen.text((2, TILE + row * LINE), f'{p:.2f} {names[c]}'[:24],
                     fill=(0, 128, 0) if c == label else (192, 0, 0), font=font)
        return np.asarray(tile)
