"""Overlay grids: one row per image, one column per saliency map, grouped under headers."""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import torch
from PIL import Image, ImageDraw
from torch import Tensor

from .cams import (CAPTION, GROUP_GAP, HEADER, PAD, _blend, _fit, _font, draw_legend,
                   tile_size)


class Column(NamedTuple):
    """One column of :func:`overlay_grid`: ``maps`` ``[R, H, W]`` in ``[0, 1]`` under
    ``title``, grouped with its neighbours of the same ``group``; optional per-row
    ``captions``."""
    group: str
    title: str
    maps: Tensor
    captions: Optional[Sequence[str]] = None


def overlay_grid(images: Tensor, columns: Sequence[Column],
                 row_captions: Sequence[str]) -> Image.Image:
    """The input images ``[R, 3, H, W]`` (uint8) in the first column, then each column's
    maps colour-mapped over them (blue low, red high, per map). Consecutive columns of
    one ``group`` share a header line; tiles are nearest-upscaled to at least 96 px."""
    images = torch.as_tensor(images)
    if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f'overlay_grid expects uint8 images [R, 3, H, W], got '
                         f'{images.dtype} {tuple(images.shape)}.')
    rows, _, height, width = images.shape
    for column in columns:
        if tuple(column.maps.shape) != (rows, height, width):
            raise ValueError(f"Column '{column.group} {column.title}' has maps "
                             f'{tuple(column.maps.shape)}, expected {(rows, height, width)}.')
    th, tw = tile_size(height, width)
    starts = _group_starts(columns)
    xs = [PAD]
    for c in range(len(columns)):
        xs.append(xs[-1] + tw + PAD + (GROUP_GAP if c in starts else 0))
    canvas = Image.new('RGB', (xs[-1] + tw + PAD, HEADER + PAD + rows * (th + CAPTION + PAD)),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font, small = _font(11), _font(10)
    black = (0, 0, 0)

    draw_legend(canvas, draw, tw)
    for c, column in enumerate(columns):
        x = xs[c + 1]
        if c in starts:
            end = starts[c]
            span = xs[end + 1] + tw - x
            draw.line([(x, PAD + CAPTION - 2), (x + span - 1, PAD + CAPTION - 2)], fill=black)
            draw.text((x, PAD), _fit(draw, column.group, span, font), fill=black, font=font)
        draw.text((x, PAD + CAPTION), _fit(draw, column.title, tw, font), fill=black, font=font)

    for r in range(rows):
        y = HEADER + PAD + r * (th + CAPTION + PAD)
        image = images[r].permute(1, 2, 0).numpy()
        image = image.repeat(th // height, axis=0).repeat(tw // width, axis=1)
        canvas.paste(Image.fromarray(image), (xs[0], y))
        draw.text((xs[0], y + th), _fit(draw, row_captions[r], tw, small), fill=black,
                  font=small)
        for c, column in enumerate(columns):
            values = column.maps[r].float().numpy()
            values = values.repeat(th // height, axis=0).repeat(tw // width, axis=1)
            canvas.paste(_blend(image, values), (xs[c + 1], y))
            if column.captions is not None:
                draw.text((xs[c + 1], y + th), _fit(draw, column.captions[r], tw, small),
                          fill=black, font=small)
    return canvas


def _group_starts(columns: Sequence[Column]) -> dict:
    """``{first column index: last column index}`` of each run of one group."""
    starts, first = {}, None
    for c, column in enumerate(columns):
        if first is None or column.group != columns[first].group:
            first = c
        starts[first] = c
    return starts
