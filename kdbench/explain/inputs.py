"""What every explanation tool needs: trained task models and the first images of a split."""
from __future__ import annotations

from typing import List, Optional, Tuple, Union

import torch
from mmengine.config import Config
from torch import Tensor, nn

from kdbench.apis.config import load_config, task_model_cfg
from kdbench.utils.weights import load_task_weights


def as_config(cfg: Union[str, Config]) -> Config:
    """A loaded config from a path (or the config itself)."""
    return load_config(cfg) if isinstance(cfg, str) else cfg


def build_task_model(cfg: Union[str, Config], part: str = 'student') -> nn.Module:
    """The task model of ``cfg``, weights not loaded: the config's model, or of a
    Distiller config its ``student`` (default) or its ``teacher`` (``part='teacher'``)."""
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings

    from kdbench.registry import MODELS

    cfg = as_config(cfg)
    if cfg.get('custom_imports'):
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'kdbench'))
    if part == 'teacher':
        if 'teacher' not in cfg.model:
            raise KeyError(f"The config {cfg.filename} is not a distillation config: it has "
                           'no model.teacher.')
        return MODELS.build(cfg.model.teacher)
    return MODELS.build(task_model_cfg(cfg.model))


def load_task_model(cfg: Union[str, Config], checkpoint: str, owner: str,
                    source: str, device: Union[str, torch.device] = 'cpu',
                    part: str = 'student') -> nn.Module:
    """:func:`build_task_model` with its weights loaded strictly from ``checkpoint`` (a task
    model, mmengine or Distiller checkpoint), in eval mode on ``device``.

    ``owner`` names the model and ``source`` the argument that gave the checkpoint, in
    error messages (missing file, mismatched keys)."""
    model = build_task_model(cfg, part)
    load_task_weights(model, checkpoint, owner=owner, source=source)
    return model.to(device).eval()


def class_count(model: nn.Module) -> Optional[int]:
    """Number of classes of a task model (its ``logits`` tap), ``None`` if unknown."""
    point = (getattr(model, 'tap_points', None) or {}).get('logits')
    return None if point is None else point.channels


def first_samples(cfg: Union[str, Config], num: int, split: str = 'test'
                  ) -> Tuple[Tensor, Tensor, List[str]]:
    """The first ``num`` samples of ``cfg``'s ``<split>_dataloader.dataset``.

    Returns:
        uint8 images ``[N, 3, H, W]``, labels ``[N]`` (class indices, or label maps
        ``[N, H, W]`` for segmentation) and the dataset's class names.
    """
    from kdbench.registry import DATASETS

    cfg = as_config(cfg)
    loader = cfg.get(f'{split}_dataloader')
    if not loader or not loader.get('dataset'):
        raise KeyError(f"The student config has no {split}_dataloader.dataset to take "
                       'images from.')
    dataset = DATASETS.build(loader['dataset'])
    names = list(getattr(dataset, 'metainfo', {}).get('classes') or [])
    samples = [dataset[i] for i in range(min(num, len(dataset)))]
    try:
        images = torch.stack([torch.as_tensor(s['inputs']) for s in samples])
        labels = torch.stack([torch.as_tensor(s['data_samples']['label']) for s in samples])
    except RuntimeError as err:
        raise ValueError('Explanations need images of one size; give the dataset a '
                         f'resize/crop pipeline ({err}).') from err
    return images, labels, names


def preprocess(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """``model``'s data preprocessor applied to uint8 ``images`` ``[N, 3, H, W]``: the float
    input batch ``[N, 3, H, W]`` (on the preprocessor's device)."""
    batch = dict(inputs=images, data_samples=dict(label=labels))
    return model.data_preprocessor(batch, False)['inputs']
