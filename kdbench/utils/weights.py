"""Weights by name: one rule for every place a weight file is named.

``model.teacher_ckpt``, ``encoder_ckpt`` (segmentation encoders), the classifier networks'
``weights`` and ``init_cfg=dict(type='Pretrained', checkpoint=...)`` all accept:

* a local path (``~`` expanded);
* ``torchvision://NAME``: torchvision's weights API, ``NAME`` = an architecture (its
  default weights, ``torchvision://resnet101``), ``ARCH.VARIANT``
  (``torchvision://resnet18.IMAGENET1K_V1``) or an enum name
  (``torchvision://ResNet18_Weights.IMAGENET1K_V1``);
* a URL: ``http(s)://`` files are cached in the torch hub cache like the torchvision ones;
  other schemes of mmengine's ``CheckpointLoader`` (``open-mmlab://``, ``s3://``, ...) go
  through it.

Downloaded files live in ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``
(``torch.hub.get_dir()``); a file already there is used without any network access, so an
offline machine works once the file is copied there (the error says which file and where).
"""
from __future__ import annotations

import os
from typing import Any, Optional
from urllib.parse import urlparse

import torch
from torch import nn
from torch.hub import download_url_to_file

from kdbench.registry import WEIGHT_INITIALIZERS

from .checkpoint import extract_state_dict, load_local_checkpoint, load_state_strictly

TORCHVISION = 'torchvision://'
#: Config keys of task models that name pre-training weights (not needed to evaluate a
#: trained checkpoint).
PRETRAINED_KEYS = ('encoder_ckpt', 'weights')


def torchvision_url(name: str) -> str:
    """The download URL of torchvision weights ``NAME`` (see the module docstring)."""
    import torchvision.models as tvm
    try:
        if '_Weights.' in name:
            return tvm.get_weight(name).url
        arch, _, variant = name.partition('.')
        enum = tvm.get_model_weights(arch)
        return (enum[variant] if variant else enum.DEFAULT).url
    except (KeyError, ValueError, AttributeError) as err:
        raise ValueError(f"Unknown torchvision weights '{TORCHVISION}{name}' ({err}); use an "
                         "architecture ('resnet18'), 'resnet18.IMAGENET1K_V1' or "
                         "'ResNet18_Weights.IMAGENET1K_V1'.") from err


def hub_file(url: str) -> str:
    """Where the torch hub cache keeps the file of ``url``."""
    return os.path.join(torch.hub.get_dir(), 'checkpoints',
                        os.path.basename(urlparse(url).path))


def fetch(url: str, name: str, source: str) -> str:
    """The local file of ``url``: the hub cache's copy, downloaded once if absent."""
    path = hub_file(url)
    if os.path.isfile(path):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        download_url_to_file(url, path, progress=False)
    except Exception as err:          # offline, proxy, HTTP error: all say the same
        raise FileNotFoundError(
            f"Could not download '{url}' for {source}='{name}' ({type(err).__name__}: "
            f"{err}). Without network access, copy that file to '{path}' (the torch hub "
            'cache; set TORCH_HOME to move it) or set '
            f'{source} to a local path.') from err
    return path


def resolve_weights(name: str, source: str = 'weights') -> Optional[str]:
    """The local file a weight name stands for, or ``None`` for a scheme only mmengine's
    ``CheckpointLoader`` reads. ``source`` is the config key, for messages."""
    if name.startswith(TORCHVISION):
        return fetch(torchvision_url(name[len(TORCHVISION):]), name, source)
    if name.startswith(('http://', 'https://')):
        return fetch(name, name, source)
    if '://' in name:
        return None
    return os.path.expanduser(name)


def load_named_weights(name: str, owner: str = 'pretrained network',
                       source: str = 'weights') -> Any:
    """Load the checkpoint object ``name`` stands for (see the module docstring)."""
    path = resolve_weights(name, source)
    if path is None:
        from mmengine.runner.checkpoint import CheckpointLoader
        return CheckpointLoader.load_checkpoint(name, map_location='cpu')
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The {owner} checkpoint '{path}' does not exist: set {source} to an existing "
            f'file, torchvision://NAME or a URL (e.g. --cfg-options {source}=PATH), or '
            f'train the {owner} first with tools/train.py and its config.')
    return load_local_checkpoint(path)


def load_task_weights(model: nn.Module, path: str, owner: str = 'teacher',
                      source: str = 'model.teacher_ckpt') -> None:
    """Load a task model's weights strictly from ``path``.

    Args:
        model: the task model (or bare network) to fill.
        path: a weight name (the rule of the module docstring: local path,
            ``torchvision://NAME`` or URL).
        owner: how the model is called in error messages.
        source: where the user set ``path`` (a config key or argument), for messages.

    Raises:
        FileNotFoundError: ``path`` does not exist (or cannot be fetched).
        CorruptCheckpointError: ``path`` is truncated or damaged
            (:class:`kdbench.utils.checkpoint.CorruptCheckpointError`).
        RuntimeError: missing, unexpected or shape-mismatched keys (listed by name).
    """
    if not path:
        raise FileNotFoundError(
            f'No {owner} checkpoint given: set {source} (e.g. --cfg-options {source}=PATH), '
            f'or train the {owner} first with tools/train.py and its config.')
    checkpoint = load_named_weights(path, owner, source)
    load_state_strictly(model, extract_state_dict(checkpoint, model), path, owner)


def without_pretraining(cfg: Any) -> Any:
    """A copy of a model config with every pre-training weight source removed
    (:data:`PRETRAINED_KEYS` set to ``None``, ``Pretrained`` init_cfgs dropped): what
    evaluating a trained checkpoint builds."""
    if isinstance(cfg, dict):
        out = type(cfg)()
        for key, value in cfg.items():
            if key in PRETRAINED_KEYS and isinstance(value, str):
                value = None
            elif key == 'init_cfg' and isinstance(value, dict) \
                    and value.get('type') == 'Pretrained':
                value = None
            out[key] = without_pretraining(value)
        return out
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(without_pretraining(v) for v in cfg)
    return cfg


@WEIGHT_INITIALIZERS.register_module(name='Pretrained')
class PretrainedInit:
    """``init_cfg=dict(type='Pretrained', checkpoint=NAME, prefix=None)`` in kdbench's
    scope: loads ``NAME`` (the rule above) strictly, through the same layout handling as
    ``teacher_ckpt``; a file that fills nothing (or leaves keys missing) is an error, not
    mmengine's warning.

    Args:
        checkpoint: weight name.
        prefix: take only the checkpoint's keys under ``prefix`` (e.g. ``'backbone.'``).
        map_location: ignored (weights are loaded on the CPU, then copied in place).
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None,
                 map_location: Any = 'cpu'):
        self.checkpoint, self.prefix = checkpoint, prefix

    def __call__(self, module: nn.Module) -> None:
        checkpoint = load_named_weights(self.checkpoint, 'pretrained', 'init_cfg.checkpoint')
        if self.prefix:
            state = checkpoint.get('state_dict', checkpoint)
            checkpoint = {k[len(self.prefix):]: v for k, v in state.items()
                          if k.startswith(self.prefix)}
        load_state_strictly(module, extract_state_dict(checkpoint, module), self.checkpoint,
                            'pretrained')

    def _get_init_info(self) -> str:
        return f'{self.__class__.__name__}: load from {self.checkpoint}'
