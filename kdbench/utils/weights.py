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
``open-mmlab://NAME`` is looked up in mmengine's model table and cached the same way.

Downloads are not trusted because they were named: they load weights-only like any file
(:func:`~kdbench.utils.checkpoint.load_local_checkpoint`, ``trust`` for more), and a file
named like torch hub's ``NAME-HASH.EXT`` (every torchvision file, e.g.
``resnet18-f37072fd.pth``) must match: its SHA-256 starts with ``HASH`` (8 or more hex
digits), or loading stops naming the file to delete and download again.
"""
from __future__ import annotations

import os
import re
from typing import Any, Callable, Optional, Union
from urllib.parse import urlparse

import torch
from torch import nn
from torch.hub import download_url_to_file

from kdbench.registry import WEIGHT_INITIALIZERS

from .checkpoint import (TRUST_HINT, CorruptCheckpointError, UntrustedCheckpointError,
                         extract_state_dict, load_local_checkpoint, load_state_strictly,
                         trusting)
from .file_hash import file_sha256

TORCHVISION = 'torchvision://'
#: mmengine's old name for ``torchvision://``.
MODELZOO = 'modelzoo://'
OPENMMLAB = ('open-mmlab://', 'openmmlab://')
#: torch hub's naming convention for downloads: ``NAME-HASH.EXT``, ``HASH`` the first hex
#: digits of the file's SHA-256 (8 or more here, so that a short word is not taken for one).
HASH_IN_NAME = re.compile(r'-([0-9a-f]{8,64})\.[^.]+$')
#: Config keys of task models that name pre-training weights (not needed to evaluate a
#: trained checkpoint).
PRETRAINED_KEYS = ('encoder_ckpt', 'encoder_weights', 'weights')
#: Config keys of task models that switch a library's own pre-training weights on
#: (``TimmClassifier``'s ``pretrained=True``).
PRETRAINED_FLAGS = ('pretrained',)


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


def check_hash_in_name(path: str, url: str) -> None:
    """Raise :class:`~kdbench.utils.checkpoint.CorruptCheckpointError` when the file name
    carries a hash prefix (:data:`HASH_IN_NAME`) that its SHA-256 does not start with."""
    found = HASH_IN_NAME.search(os.path.basename(path))
    if found and not file_sha256(path).startswith(found.group(1)):
        raise CorruptCheckpointError(
            f"The downloaded file '{path}' does not match the hash in its name (its "
            f'SHA-256 does not start with {found.group(1)}): it is damaged or another file. '
            f"Delete it and run again to download '{url}' again (or copy a good copy there).")


def fetch(url: str, name: str, source: str) -> str:
    """The local file of ``url``: the hub cache's copy, downloaded once if absent; checked
    against the hash in its name (:func:`check_hash_in_name`)."""
    path = hub_file(url)
    if not os.path.isfile(path):
        _download(url, path, name, source)
    check_hash_in_name(path, url)
    return path


def _download(url: str, path: str, name: str, source: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        download_url_to_file(url, path, progress=False)
    except Exception as err:          # offline, proxy, HTTP error: all say the same
        raise FileNotFoundError(
            f"Could not download '{url}' for {source}='{name}' ({type(err).__name__}: "
            f"{err}). Without network access, copy that file to '{path}' (the torch hub "
            'cache; set TORCH_HOME to move it) or set '
            f'{source} to a local path.') from err


def openmmlab_url(name: str) -> str:
    """The URL (or file under mmengine's home) mmengine's model table gives
    ``open-mmlab://MODEL``."""
    from mmengine.runner.checkpoint import get_deprecated_model_names, get_external_models
    model = name.split('://', 1)[1]
    model = get_deprecated_model_names().get(model, model)
    models = get_external_models()
    if model not in models:
        raise ValueError(f"Unknown weights '{name}': mmengine's open-mmlab model table has "
                         f'no {model!r}.')
    return models[model]


def resolve_weights(name: str, source: str = 'weights') -> Optional[str]:
    """The local file a weight name stands for, or ``None`` for a scheme only mmengine's
    ``CheckpointLoader`` reads. ``source`` is the config key, for messages."""
    if name.startswith((TORCHVISION, MODELZOO)):
        return fetch(torchvision_url(name.split('://', 1)[1]), name, source)
    if name.startswith(OPENMMLAB):
        url = openmmlab_url(name)
        if '://' in url:
            return fetch(url, name, source)
        from mmengine.runner.checkpoint import _get_mmengine_home
        return os.path.join(_get_mmengine_home(), url)
    if name.startswith(('http://', 'https://')):
        return fetch(name, name, source)
    if '://' in name:
        return None
    return os.path.expanduser(name)


#: mmengine's loaders that unpickle without ``weights_only`` (through torch hub).
UNPICKLING_SCHEMES = ('mmcls://',)


def load_named_weights(name: str, owner: str = 'pretrained network',
                       source: str = 'weights', trust: Optional[bool] = None,
                       map_location: Union[str, Callable] = 'cpu') -> Any:
    """Load the checkpoint object ``name`` stands for (see the module docstring); ``trust``
    as in :func:`~kdbench.utils.checkpoint.load_local_checkpoint`."""
    path = resolve_weights(name, source)
    trust = trusting() if trust is None else trust
    if path is None:
        if name.startswith(UNPICKLING_SCHEMES) and not trust:
            raise UntrustedCheckpointError(
                f"Refusing to load {source}='{name}': mmengine loads it with "
                'weights_only=False, which runs the code a file holds. Name its URL instead '
                f'(checked and loaded weights-only), or consent with {TRUST_HINT}.')
        from mmengine.runner.checkpoint import CheckpointLoader
        return CheckpointLoader.load_checkpoint(name, map_location=map_location)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"The {owner} checkpoint '{path}' does not exist: set {source} to an existing "
            f'file, torchvision://NAME or a URL (e.g. --cfg-options {source}=PATH), or '
            f'train the {owner} first with tools/train.py and its config.')
    return load_local_checkpoint(path, map_location, trust)


def load_task_weights(model: nn.Module, path: str, owner: str = 'teacher',
                      source: str = 'model.teacher_ckpt', trust: Optional[bool] = None) -> None:
    """Load a task model's weights strictly from ``path``.

    Args:
        model: the task model (or bare network) to fill.
        path: a weight name (the rule of the module docstring: local path,
            ``torchvision://NAME`` or URL).
        owner: how the model is called in error messages.
        source: where the user set ``path`` (a config key or argument), for messages.
        trust: load a file that needs more than a weights-only load (``None``: the
            enclosing :func:`~kdbench.utils.checkpoint.trusted_checkpoints` block's consent).

    Raises:
        FileNotFoundError: ``path`` does not exist (or cannot be fetched).
        CorruptCheckpointError: ``path`` is truncated or damaged, holds no dict, or does
            not match the hash in its name (:mod:`kdbench.utils.checkpoint`).
        UntrustedCheckpointError: ``path`` needs more than a weights-only load and
            ``trust`` is false.
        RuntimeError: missing, unexpected or shape-mismatched keys (listed by name).
    """
    if not path:
        raise FileNotFoundError(
            f'No {owner} checkpoint given: set {source} (e.g. --cfg-options {source}=PATH), '
            f'or train the {owner} first with tools/train.py and its config.')
    checkpoint = load_named_weights(path, owner, source, trust)
    load_state_strictly(model, extract_state_dict(checkpoint, model), path, owner)


def without_pretraining(cfg: Any) -> Any:
    """A copy of a model config with every pre-training weight source removed
    (:data:`PRETRAINED_KEYS` set to ``None``, :data:`PRETRAINED_FLAGS` to ``False``,
    ``Pretrained`` init_cfgs dropped): what evaluating a trained checkpoint builds."""
    if isinstance(cfg, dict):
        out = type(cfg)()
        for key, value in cfg.items():
            if key in PRETRAINED_KEYS and isinstance(value, str):
                value = None
            elif key in PRETRAINED_FLAGS and value is True:
                value = False
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
