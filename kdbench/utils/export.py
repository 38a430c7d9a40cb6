"""The plain student network of a distillation (or task-model) checkpoint, for deployment.

The result is the bare network's state dict: no ``student.``/``net.`` prefixes, no method
parameters, optimizer or message hub; it loads with ``torch.load(weights_only=True)`` and
``load_state_dict`` into the network the task model wraps (the torchvision model of an
ImageNet student, smp's ``DeepLabV3Plus`` of a segmentation student, the CIFAR network).
"""
from __future__ import annotations

import io
from typing import Dict, Mapping

import torch
from torch import Tensor

from .atomic_io import write_atomically
from .checkpoint import load_local_checkpoint, strip_prefix, unwrap_state_dict

#: Where kdbench's task models hold their network.
NETWORK = 'net.'


def student_network_state(checkpoint: Mapping, path: str = 'checkpoint') -> Dict[str, Tensor]:
    """The bare student network's weights in ``checkpoint`` (an mmengine checkpoint of a
    Distiller or of a task model, or their state dict); ``path`` names it in errors."""
    state = unwrap_state_dict(checkpoint)     # a Distiller's student.*, not methods.*
    others = sorted({k.split('.', 1)[0] for k in state if not k.startswith(NETWORK)})
    if not state or others:
        raise ValueError(f"'{path}' is not a kdbench task-model or Distiller checkpoint: "
                         f'expected keys under {NETWORK!r} (or student.{NETWORK!r}), found '
                         f'{others[:5] or "no weights"}.')
    return {k: v.detach().cpu().clone() for k, v in strip_prefix(state, NETWORK).items()}


def export_student(checkpoint: str, out: str, trust: bool = False) -> Dict[str, Tensor]:
    """Write the bare student network's state dict of ``checkpoint`` to ``out`` (atomically)
    and return it; ``trust`` loads a file that needs more than a weights-only load
    (:func:`~kdbench.utils.checkpoint.load_local_checkpoint`)."""
    state = student_network_state(load_local_checkpoint(checkpoint, trust=trust), checkpoint)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomically(buffer.getvalue(), out)
    return state
