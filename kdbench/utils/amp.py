"""Mixed precision on any device: ``--amp`` runs the forward pass under ``torch.autocast``."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from kdbench.registry import OPTIM_WRAPPERS

DTYPES = ('bfloat16', 'float16')


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` whose forward context is ``torch.autocast(device, dtype)``,
    without loss scaling (bfloat16 has float32's exponent range, so gradients do not
    underflow). ``--amp`` uses it on CPU; on GPUs it uses mmengine's ``AmpOptimWrapper``
    (float16 with dynamic loss scaling). The distillation losses compute their softmax,
    KL, attention and MSE in float32 whatever the autocast dtype.

    Args:
        optimizer: the wrapped optimizer.
        dtype: ``'bfloat16'`` (default) or ``'float16'``.
        device_type: autocast device; default: the device of the model's parameters.
        **kwargs: ``OptimWrapper`` arguments.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, dtype: str = 'bfloat16',
                 device_type: Optional[str] = None, **kwargs):
        super().__init__(optimizer, **kwargs)
        if dtype not in DTYPES:
            raise ValueError(f"AutocastOptimWrapper dtype must be one of {DTYPES}, got '{dtype}'.")
        self.dtype, self.device_type = getattr(torch, dtype), device_type

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        device = self.device_type or next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device_type=device, dtype=self.dtype):
            yield


def enable_amp(cfg: Config, device: Optional[str] = None) -> None:
    """Switch ``cfg``'s optimizer wrapper to mixed precision: float16 with dynamic loss
    scaling on a CUDA GPU (mmengine's ``AmpOptimWrapper``), bfloat16 autocast on CPU.
    ``device`` is where the model trains (default: a GPU when one is available)."""
    cuda = torch.cuda.is_available() if device is None else device.startswith('cuda')
    if cuda:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    else:
        cfg.optim_wrapper.type = 'AutocastOptimWrapper'
        cfg.optim_wrapper.setdefault('dtype', 'bfloat16')
