"""Teacher checkpoints with random weights, written as kdbench loads teachers
(``{'state_dict': ...}`` of the task model, for ``model.teacher_ckpt``)."""
from __future__ import annotations

import json
import os
from typing import Dict, Optional

import torch
from torch import nn

from kdbench.registry import MODELS

from .batches import Shape


@torch.no_grad()
def calibrate_batchnorm(model: nn.Module, inputs: torch.Tensor) -> None:
    """Set every BatchNorm's running mean and variance to its batch statistics for
    ``inputs`` ``[N, 3, H, W]`` (one training-mode forward pass, cumulative average)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    model(inputs, mode='tensor')
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()


def write_random_teacher(model_cfg: dict, path: str, seed: int = 0,
                         calibration: Optional[Shape] = None) -> str:
    """Build the task model of ``model_cfg`` after ``torch.manual_seed(seed)``, save
    ``{'state_dict': model.state_dict()}`` to ``path`` and return ``path``.

    With ``calibration``, the BatchNorm statistics are first set to those of a random
    batch ``[max(N, 2), 3, S, S]`` of that shape (:func:`calibrate_batchnorm`).
    """
    torch.manual_seed(seed)
    model = MODELS.build(dict(model_cfg))
    if calibration is not None:
        side = calibration.size
        calibrate_batchnorm(model, torch.randn(max(calibration.batch, 2), 3, side, side))
    torch.save({'state_dict': model.state_dict()}, path)
    return path


class TeacherCheckpoints:
    """Random teacher weights written once per teacher config to the folder ``root``.

    A randomly initialised deep network in eval mode (BatchNorm with its initial running
    statistics) amplifies its activations layer after layer (a random ResNet-101's last
    stage reaches ~1e4), which no trained teacher does. So the BatchNorm statistics are
    first set to those of one random batch (:func:`calibrate_batchnorm`): the teacher's
    features and logits then have the scale of a trained network's, and so do the losses.
    """

    def __init__(self, root: str):
        self.root = root
        self.paths: Dict[str, str] = {}

    def path(self, teacher_cfg: dict, shape: Shape) -> str:
        """The checkpoint of ``teacher_cfg`` (seed 1000, calibrated at ``shape``),
        written on the first call for that config."""
        key = json.dumps(teacher_cfg, sort_keys=True, default=str)
        if key not in self.paths:
            path = os.path.join(self.root, f'teacher{len(self.paths)}.pth')
            self.paths[key] = write_random_teacher(teacher_cfg, path, seed=1000,
                                                   calibration=shape)
        return self.paths[key]
