"""Random input batches in the layout the dataloaders deliver."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Shape:
    """Batch size and square input side of one setting."""
    batch: int
    size: int


def random_batch(shape: Shape, num_classes: int, dense: bool, seed: int = 0,
                 ignore_index: int = 255) -> dict:
    """A uint8 image batch ``[N, 3, S, S]`` with labels ``[N]`` or ``[N, S, S]`` (dense
    labels have ~5% ``ignore_index`` pixels), as the dataloaders deliver them."""
    generator = torch.Generator().manual_seed(seed)
    n, s = shape.batch, shape.size
    inputs = torch.randint(0, 256, (n, 3, s, s), dtype=torch.uint8, generator=generator)
    if not dense:
        label = torch.randint(0, num_classes, (n,), generator=generator)
    else:
        label = torch.randint(0, num_classes, (n, s, s), generator=generator)
        label[torch.rand(n, s, s, generator=generator) < 0.05] = ignore_index
    return dict(inputs=inputs, data_samples=dict(label=label))
