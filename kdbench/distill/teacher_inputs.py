"""The teacher's own input normalisation, from the batch the student is fed.

A teacher trained with another mean/std than the student (a timm ViT: 0.5/0.5; a CNN:
ImageNet's) declares its own ``data_preprocessor`` in its config. The Distiller normalises
each batch once, with its (the student's) preprocessor; the teacher's input is that batch
converted to the teacher's normalisation, per channel::

    raw = x * std_s + mean_s        x_t = (raw - mean_t) / std_t = x * scale + shift
    scale = std_s / std_t           shift = (mean_s - mean_t) / std_t

A teacher config without a ``data_preprocessor``, or with the student's mean, std and
channel order, sees the student's batch unchanged (no conversion runs).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor, nn


def _normalisation(preprocessor: nn.Module, channels: int, where: str
                   ) -> Tuple[Tensor, Tensor, bool]:
    """``(mean, std, bgr_to_rgb)`` of an mmengine ``ImgDataPreprocessor`` (mean 0, std 1
    where it does not normalise); a ``TypeError`` naming ``where`` for other kinds."""
    if not hasattr(preprocessor, '_enable_normalize'):
        raise TypeError(f'{where} is a {type(preprocessor).__name__}; the teacher\'s own '
                        'normalisation needs ImgDataPreprocessor (mean/std) on both models.')
    if preprocessor._enable_normalize:
        mean, std = preprocessor.mean.flatten().double(), preprocessor.std.flatten().double()
    else:
        mean = torch.zeros(channels, dtype=torch.double)
        std = torch.ones(channels, dtype=torch.double)
    return mean, std, bool(preprocessor._channel_conversion)


class TeacherInputs(nn.Module):
    """``x`` ``[N, C, H, W]`` -> ``x * scale + shift`` (per channel, in ``x``'s dtype);
    the buffers are not saved in checkpoints (the configs define them)."""

    def __init__(self, scale: Tensor, shift: Tensor):
        super().__init__()
        self.register_buffer('scale', scale.float().reshape(1, -1, 1, 1), persistent=False)
        self.register_buffer('shift', shift.float().reshape(1, -1, 1, 1), persistent=False)

    def forward(self, inputs: Tensor) -> Tensor:
        return inputs * self.scale.to(inputs.dtype) + self.shift.to(inputs.dtype)


def teacher_inputs(student: nn.Module, teacher: nn.Module, teacher_cfg: dict
                   ) -> Optional[TeacherInputs]:
    """The conversion from the Distiller's preprocessor ``student`` to the preprocessor
    ``teacher`` of the teacher config ``teacher_cfg``; ``None`` when the config declares
    none or the same normalisation (see the module docstring)."""
    if not teacher_cfg.get('data_preprocessor'):
        return None
    channels = int(getattr(teacher, 'mean', torch.zeros(3)).numel())
    mean_s, std_s, bgr_s = _normalisation(student, channels, "the Distiller's data_preprocessor")
    mean_t, std_t, bgr_t = _normalisation(teacher, channels,
                                          'model.teacher.data_preprocessor')
    if bgr_s != bgr_t:
        raise ValueError('model.teacher.data_preprocessor converts BGR to RGB and the '
                         "Distiller's data_preprocessor does not (or the reverse); the teacher "
                         'is fed the same images, so set the same bgr_to_rgb on both.')
    if mean_s.shape != mean_t.shape:
        raise ValueError(f'model.teacher.data_preprocessor normalises {mean_t.numel()} '
                         f"channels and the Distiller's {mean_s.numel()}; they must agree.")
    if mean_s.is_meta or mean_t.is_meta:
        # A meta-device build (recipe cards) has no values to compare: keep a conversion
        # of the right shape.
        return TeacherInputs(std_s / std_t, (mean_s - mean_t) / std_t)
    if torch.equal(mean_s, mean_t) and torch.equal(std_s, std_t):
        return None
    return TeacherInputs(std_s / std_t, (mean_s - mean_t) / std_t)


def same_conversion(first: Optional[TeacherInputs], second: Optional[TeacherInputs]) -> bool:
    """Whether two conversions (``None``: none) feed a teacher the same inputs."""
    if first is None or second is None:
        return first is second
    return torch.equal(first.scale, second.scale) and torch.equal(first.shift, second.shift)
