"""The validation protocol of a training run: the config key ``validation``.

::

    validation = dict(split='test')                        # default: the papers' protocol
    validation = dict(split='holdout', size=5000, seed=0)  # or fraction=0.1 instead of size

With ``split='test'`` (the default, also when the key is absent) nothing changes: the run
validates on its ``val_dataloader`` (the test split). With ``split='holdout'``,
:func:`training_config` rewrites the dataloaders: training uses the rest of the training
set, validation the held-out part of it (:class:`~kdbench.holdout.HoldoutSplit`, with the
``val_dataloader``'s pipeline and loader settings), and the test split
(``test_dataloader``, unchanged) is evaluated once at the end of training. ``size`` and
``fraction`` are read only with ``'holdout'``; neither given: the dataset's
``HOLDOUT_DEFAULT``. Every run gets the :class:`~kdbench.hooks.FinalMetricsHook`, which
writes ``final_metrics.json`` (docs/validation.md).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, List, Optional

from mmengine.config import Config

import kdbench.holdout  # noqa: F401  (registers HoldoutSplit)

PROTOCOLS = ('test', 'holdout')
_KEYS = ('split', 'size', 'fraction', 'seed')
_EXAMPLE = "validation = dict(split='holdout', size=5000, seed=0)"


@dataclass(frozen=True)
class ValidationProtocol:
    """The checked ``validation`` key: ``split`` in :data:`PROTOCOLS`, the held-out
    ``size`` (items) or ``fraction``, and the split ``seed``."""

    split: str = 'test'
    size: Optional[int] = None
    fraction: Optional[float] = None
    seed: int = 0

    @property
    def holdout(self) -> bool:
        return self.split == 'holdout'


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validation_protocol(cfg: Config) -> ValidationProtocol:
    """``cfg.validation`` checked; a ``ValueError`` naming the key and the fix for an
    unknown split or key, a wrong type, a size below 1 or a fraction outside (0, 1)."""
    value = cfg.get('validation')
    if value is None:
        return ValidationProtocol()
    if not isinstance(value, dict):
        raise ValueError(f'validation must be a dict, e.g. {_EXAMPLE}; got {value!r}.')
    unknown = sorted(set(value) - set(_KEYS))
    if unknown:
        raise ValueError(f'validation has unknown keys {unknown}; it takes {list(_KEYS)}, '
                         f'e.g. {_EXAMPLE}.')
    split = value.get('split', 'test')
    if split not in PROTOCOLS:
        raise ValueError(f"validation.split must be one of {list(PROTOCOLS)} ('test': validate "
                         "on the test split, the papers' protocol; 'holdout': on a part held "
                         f'out of the training set), got {split!r}.')
    size, fraction, seed = value.get('size'), value.get('fraction'), value.get('seed', 0)
    if size is not None and (not _is_int(size) or size < 1):
        raise ValueError(f'validation.size must be a whole number of items >= 1, got '
                         f'{size!r}; or give validation.fraction (a share in (0, 1)).')
    if fraction is not None and (isinstance(fraction, bool) or
                                 not isinstance(fraction, (int, float)) or
                                 not 0 < fraction < 1):
        raise ValueError(f'validation.fraction must be a number in (0, 1), got {fraction!r}; '
                         'or give validation.size (items).')
    if size is not None and fraction is not None:
        raise ValueError(f'validation gives both size={size} and fraction={fraction}; keep '
                         'one.')
    if not _is_int(seed):
        raise ValueError(f'validation.seed must be an integer, got {seed!r}.')
    return ValidationProtocol(split, size, None if fraction is None else float(fraction), seed)


def training_config(cfg: Config) -> Config:
    """A copy of ``cfg`` set up for its validation protocol (module docstring): with
    ``split='holdout'`` its train and val dataloaders split the training set; every config
    gets the ``FinalMetricsHook``. Raises ``ValueError`` for a bad ``validation`` key or,
    with ``'holdout'``, a config without the loaders it needs."""
    protocol = validation_protocol(cfg)
    cfg = copy.deepcopy(cfg)
    hooks: List[dict] = [h for h in cfg.get('custom_hooks') or []
                         if not (isinstance(h, dict) and h.get('type') == 'FinalMetricsHook')]
    cfg['custom_hooks'] = hooks + [dict(type='FinalMetricsHook', protocol=protocol.split)]
    if protocol.holdout:
        _split_training_set(cfg, protocol)
    return cfg


def _split_training_set(cfg: Config, protocol: ValidationProtocol) -> None:
    missing = [key for key in ('train_dataloader', 'val_dataloader', 'val_cfg',
                               'val_evaluator', 'test_dataloader', 'test_cfg', 'test_evaluator')
               if cfg.get(key) is None]
    if missing:
        raise ValueError(f"validation.split='holdout' validates on a part of the training set "
                         'with the val_* settings and evaluates the test split once at the end '
                         f'with the test_* settings; {getattr(cfg, "filename", None) or "the config"} lacks '
                         f'{", ".join(missing)}. Set them, or use validation.split=test.')
    train, val = cfg['train_dataloader'], cfg['val_dataloader']
    split = dict(seed=protocol.seed)
    split.update({k: v for k, v in (('size', protocol.size), ('fraction', protocol.fraction))
                  if v is not None})
    val_dataset = _with_pipeline(train['dataset'], _pipeline_of(val['dataset']))
    # new dicts, not edits: val_dataloader and test_dataloader may be one object
    cfg['val_dataloader'] = dict(copy.deepcopy(dict(val)), dataset=dict(
        type='HoldoutSplit', dataset=val_dataset, part='val', **split))
    cfg['train_dataloader'] = dict(copy.deepcopy(dict(train)), dataset=dict(
        type='HoldoutSplit', dataset=copy.deepcopy(dict(train['dataset'])), part='train',
        **split))


def _pipeline_of(dataset: Any) -> Optional[list]:
    """The first ``pipeline`` along a dataset config's ``dataset`` chain (``None``: none)."""
    while isinstance(dataset, dict):
        if 'pipeline' in dataset:
            return copy.deepcopy(dataset['pipeline'])
        dataset = dataset.get('dataset')
    return None


def _with_pipeline(dataset: dict, pipeline: Optional[list]) -> dict:
    """A copy of ``dataset`` whose first ``pipeline`` along its ``dataset`` chain is
    ``pipeline`` (the val dataloader's: held-out items are not augmented)."""
    dataset = copy.deepcopy(dict(dataset))
    if 'datasets' in dataset:
        raise ValueError(f"validation.split='holdout' cannot give the held-out part the val "
                         f"pipeline: train_dataloader.dataset ({dataset.get('type')}) joins "
                         'several datasets; split one dataset, or use validation.split=test.')
    if 'pipeline' in dataset:
        dataset['pipeline'] = pipeline
    elif isinstance(dataset.get('dataset'), dict):
        dataset['dataset'] = _with_pipeline(dataset['dataset'], pipeline)
    return dataset
