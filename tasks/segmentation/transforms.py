"""Segmentation transforms: albumentations 2 pipelines on (image uint8 ``[H, W, 3]`` RGB,
label uint8 ``[H, W]``) pairs, and the batch collate.

A pipeline is a list of ``dict(type=NAME, **kwargs)``: ``Seg*`` names are kdbench's own
transforms (registered in ``TRANSFORMS``), every other name is an albumentations class
(``HorizontalFlip``, ``PadIfNeeded``, ``RandomCrop``, ``GaussianBlur``, ``Resize``, ...).
They do not go through ``TRANSFORMS``, so they never clash with the classification task's
torchvision names. Normalisation (ImageNet mean/std) is done by the model's data
preprocessor on the device, not here.

Registered: ``TRANSFORMS``: ``SegRandomShortSideScale``; ``FUNCTIONS``: ``seg_collate``
(mmengine's Runner looks collate functions up in its root registry, so configs write
``collate_fn=dict(type='kdbench.seg_collate')``).
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple

import albumentations as A
import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import get_worker_info

from kdbench.registry import FUNCTIONS, TRANSFORMS

IGNORE_INDEX = 255


@TRANSFORMS.register_module()
class SegRandomShortSideScale(A.DualTransform):
    """Resize so that the short side is ``round(base_size * s)``, ``s ~ U[scale_range]``,
    keeping the aspect ratio (image: ``interpolation``, mask: ``mask_interpolation``).

    Args:
        base_size: short side at scale 1 (513 in the DeepLabV3+ recipe).
        scale_range: ``(low, high)`` range of ``s``.
        interpolation: OpenCV flag for the image (bilinear).
        mask_interpolation: OpenCV flag for the mask (nearest).
        p: probability of applying.
    """

    def __init__(self, base_size: int = 513, scale_range: Tuple[float, float] = (0.5, 2.0),
                 interpolation: int = cv2.INTER_LINEAR,
                 mask_interpolation: int = cv2.INTER_NEAREST, p: float = 1.0):
        super().__init__(p=p)
        if base_size <= 0 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError('SegRandomShortSideScale needs base_size > 0 and 0 < low <= high, '
                             f'got base_size={base_size}, scale_range={scale_range}.')
        self.base_size, self.scale_range = base_size, tuple(scale_range)
        self.interpolation, self.mask_interpolation = interpolation, mask_interpolation

    def get_params_dependent_on_data(self, params: Dict[str, Any],
                                     data: Dict[str, Any]) -> Dict[str, Any]:
        h, w = params['shape'][:2]
        ratio = self.base_size * self.py_random.uniform(*self.scale_range) / min(h, w)
        return dict(size=(max(1, round(w * ratio)), max(1, round(h * ratio))))  # cv2: (W, H)

    def apply(self, img: np.ndarray, size: Tuple[int, int], **params: Any) -> np.ndarray:
        return cv2.resize(img, size, interpolation=self.interpolation)

    def apply_to_mask(self, mask: np.ndarray, size: Tuple[int, int],
                      **params: Any) -> np.ndarray:
        return cv2.resize(mask, size, interpolation=self.mask_interpolation)

    def get_transform_init_args_names(self) -> Tuple[str, ...]:
        return 'base_size', 'scale_range', 'interpolation', 'mask_interpolation'


def build_seg_transform(cfg: dict) -> A.BasicTransform:
    """One transform from ``dict(type=NAME, **kwargs)``; unknown names or arguments raise
    (albumentations itself only warns and ignores a misspelt argument such as v1's
    ``mask_value``)."""
    cfg = dict(cfg)
    name = cfg.pop('type', None)
    cls = TRANSFORMS.get(name) if str(name).startswith('Seg') else getattr(A, str(name), None)
    if not (inspect.isclass(cls) and issubclass(cls, A.BasicTransform)):
        own = sorted(k for k in TRANSFORMS.module_dict if k.startswith('Seg'))
        raise ValueError(f"Unknown segmentation transform '{name}': use an albumentations "
                         'class name (e.g. HorizontalFlip, PadIfNeeded, RandomCrop) or one of '
                         f"kdbench's {own}.")
    params = inspect.signature(cls).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(cfg) - set(params))
        if unknown:
            raise ValueError(f'{name} got unknown argument(s) {unknown}; valid: '
                             f'{sorted(params)} (albumentations {A.__version__}).')
    return cls(**cfg)


class SegPipeline:
    """``(image [H, W, 3] uint8, label [H, W] uint8) -> (image, label)`` through an
    albumentations ``Compose``.

    albumentations keeps its own random state, which a forked DataLoader worker would copy
    unchanged (every worker, every epoch, the same augmentations): inside a worker the
    state is reseeded whenever the worker's torch seed (``torch.initial_seed()``) changes;
    kdbench reseeds workers per (seed, epoch, rank, worker id), see
    :mod:`kdbench.hooks.worker_seed`.

    Args:
        cfgs: transform configs (see :func:`build_seg_transform`).
        seed: seed of the random state (``None``: from the OS).
    """

    def __init__(self, cfgs: Sequence[dict], seed: Optional[int] = None):
        self.compose = A.Compose([build_seg_transform(c) for c in cfgs], seed=seed)
        self._worker_seed: Optional[int] = None

    def __call__(self, image: np.ndarray, label: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        if get_worker_info() is not None and torch.initial_seed() != self._worker_seed:
            self._worker_seed = torch.initial_seed()
            self.compose.set_random_seed(self._worker_seed % 2**32)
        out = self.compose(image=image, mask=label)
        return out['image'], out['mask']


def build_seg_pipeline(cfgs: Optional[Sequence[dict]],
                       seed: Optional[int] = None) -> Optional[SegPipeline]:
    """Compose a list of transform configs; ``None`` or ``[]`` means no transform."""
    return SegPipeline(cfgs, seed) if cfgs else None


def train_pipeline(crop_size: int = 512, base_size: int = 513,
                   scale_range: Tuple[float, float] = (0.5, 2.0)) -> List[dict]:
    """DeepLabV3+ training recipe: flip 0.5, short side ``base_size * U[scale_range]``,
    pad to ``crop_size`` (image 0, label 255; at bottom/right), random ``crop_size`` crop,
    Gaussian blur p=0.5 with sigma ~ U[0.1, 1] (the reference code's PIL
    ``GaussianBlur(radius=random())``; albumentations needs sigma > 0)."""
    return [
        dict(type='HorizontalFlip', p=0.5),
        dict(type='SegRandomShortSideScale', base_size=base_size, scale_range=scale_range),
        dict(type='PadIfNeeded', min_height=crop_size, min_width=crop_size,
             position='top_left', border_mode=cv2.BORDER_CONSTANT, fill=0,
             fill_mask=IGNORE_INDEX),
        dict(type='RandomCrop', height=crop_size, width=crop_size),
        dict(type='GaussianBlur', blur_limit=0, sigma_limit=(0.1, 1.0), p=0.5),
    ]


def val_pipeline(resize: Optional[int] = None) -> List[dict]:
    """Evaluation: the whole image (default) or the official fixed ``resize`` x ``resize``
    (image bilinear, label nearest)."""
    if resize is None:
        return []
    return [dict(type='Resize', height=resize, width=resize,
                 interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST)]


def _empty(shape: Tuple[int, ...], dtype: torch.dtype) -> Tensor:
    """Uninitialised CPU tensor; inside a DataLoader worker it is allocated in shared memory,
    as torch's ``default_collate`` does, so the batch is not copied again on its way to the
    main process."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    like = torch.empty(0, dtype=dtype)
    return like.new(like._typed_storage()._new_shared(int(np.prod(shape)))).resize_(shape)


@FUNCTIONS.register_module()
def seg_collate(data_batch: Sequence[dict]) -> Dict[str, Any]:
    """Stack samples, padding at bottom/right to the batch's largest H, W: images with 0,
    labels with 255 (ignored).

    Returns:
        ``dict(inputs=uint8 [B, 3, H, W], data_samples=dict(label=int64 [B, H, W]))``.
    """
    images: List[Tensor] = [s['inputs'] for s in data_batch]
    labels: List[Tensor] = [s['data_samples']['label'] for s in data_batch]
    h = max(x.shape[-2] for x in images)
    w = max(x.shape[-1] for x in images)
    inputs = _empty((len(images), images[0].shape[0], h, w), images[0].dtype)
    label = _empty((len(labels), h, w), torch.int64)
    # Filled through numpy: torch's multi-threaded fill/copy is several times slower on a
    # couple of busy cores.
    inputs.numpy().fill(0)
    label.numpy().fill(IGNORE_INDEX)
    for i, (image, target) in enumerate(zip(images, labels)):
        inputs.numpy()[i, :, :image.shape[-2], :image.shape[-1]] = image.numpy()
        label.numpy()[i, :target.shape[-2], :target.shape[-1]] = target.numpy()
    return dict(inputs=inputs, data_samples=dict(label=label))
