"""Image transforms: torchvision ``transforms.v2`` ops on uint8 ``[3, H, W]`` tensors.

Normalisation happens in the model's data preprocessor (on the device), so pipelines
only crop, resize and flip. Registered names: RandomCrop, RandomHorizontalFlip,
RandomResizedCrop, Resize, CenterCrop.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from torchvision.transforms import v2

from kdbench.registry import TRANSFORMS

for _name in ('RandomCrop', 'RandomHorizontalFlip', 'RandomResizedCrop', 'Resize',
              'CenterCrop'):
    TRANSFORMS.register_module(name=_name, module=getattr(v2, _name))


def build_pipeline(pipeline: Optional[Sequence[dict]]) -> Optional[Callable]:
    """Compose a list of transform configs; ``None`` or ``[]`` means no transform."""
    if not pipeline:
        return None
    return v2.Compose([TRANSFORMS.build(t) for t in pipeline])
