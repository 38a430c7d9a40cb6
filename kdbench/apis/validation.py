"""The validation protocol of a training run: the config key ``validation``.

::

    validation = dict(split='test')                        # default: the papers' protocol
    validation = dict(split='holdout', size=5000, seed=0)  # or fraction=0.1 instead of size
    validation = dict(split='holdout', source='unused', size=450)   # a reduced training set

With ``split='test'`` (the default, also when the key is absent) nothing changes: the run
validates on its ``val_dataloader`` (the test split). With ``split='holdout'``,
:func:`training_config` rewrites the dataloaders: training uses the rest of the training
set, validation the held-out part of it (:class:`~kdbench.holdout.HoldoutSplit`, with the
``val_dataloader``'s pipeline and loader settings), and the test split
(``test_dataloader``, unchanged) is evaluated once at the end of training. ``size`` and
``fraction`` are read only with ``'holdout'``; neither given: the dataset's
``HOLDOUT_DEFAULT``. ``source='unused'`` holds the validation part out of the items a
reduced training set leaves out (a dataset class with a ``LEFT_OUT`` keyword, e.g.
``ClassSubsetDataset``) instead, and training keeps its whole set. Every run gets the
:class:`~kdbench.hooks.FinalMetricsHook`, which writes ``final_metrics.json``
(docs/validation.md).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional

from mmengine.config import Config
from mmengine.utils import import_modules_from_strings

import kdbench.holdout  # noqa: F401  (registers HoldoutSplit)
from kdbench.registry import DATASETS

PROTOCOLS = ('test', 'holdout')
_KEYS = ('split', 'size', 'fraction', 'seed', 'source')
#: Where the held-out part comes from: the training set, or the items it leaves out.
SOURCES = ('train', 'unused')
_EXAMPLE = "validation = dict(split='holdout', size=5000, seed=0)"


@dataclass(frozen=True)
class ValidationProtocol:
    """The checked ``validation`` key: ``split`` in :data:`PROTOCOLS`, the held-out
    ``size`` (items) or ``fraction``, the split ``seed`` and the ``source`` in
    :data:`SOURCES`."""

    split: str = 'test'
    size: Optional[int] = None
    fraction: Optional[float] = None
    seed: int = 0
    source: str = 'train'

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
    source = value.get('source', 'train')
    if source not in SOURCES:
        raise ValueError(f"validation.source must be one of {list(SOURCES)} ('train': hold the "
                         "validation part out of the training set; 'unused': out of the items "
                         f'a reduced training set leaves out), got {source!r}.')
    return ValidationProtocol(split, size, None if fraction is None else float(fraction), seed,
                              source)


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
        name = getattr(cfg, 'filename', None) or 'the config'
        raise ValueError(f"validation.split='holdout' validates on a part of the training set "
                         'with the val_* settings and evaluates the test split once at the end '
                         f'with the test_* settings; {name} lacks {", ".join(missing)}. Set '
                         'them, or use validation.split=test.')
    train, val = cfg['train_dataloader'], cfg['val_dataloader']
    split = dict(seed=protocol.seed)
    split.update({k: v for k, v in (('size', protocol.size), ('fraction', protocol.fraction))
                  if v is not None})
    val_dataset = _with_pipeline(train['dataset'], _pipeline_of(val['dataset']))
    if protocol.source == 'unused':
        val_dataset = _left_out(val_dataset, cfg)
    # new dicts, not edits: val_dataloader and test_dataloader may be one object
    cfg['val_dataloader'] = dict(copy.deepcopy(dict(val)), dataset=dict(
        type='HoldoutSplit', dataset=val_dataset, part='val', **split))
    if protocol.source == 'train':
        cfg['train_dataloader'] = dict(copy.deepcopy(dict(train)), dataset=dict(
            type='HoldoutSplit', dataset=copy.deepcopy(dict(train['dataset'])), part='train',
            **split))


def _left_out(dataset: dict, cfg: Config) -> dict:
    """``dataset`` (edited in place and returned) giving the items its reduction leaves
    out: the first dataset along its ``dataset`` chain whose class has a ``LEFT_OUT``
    keyword gets it."""
    if cfg.get('custom_imports'):          # the registry learns the config's dataset types
        import_modules_from_strings(**cfg['custom_imports'])
    for node in _chain(dataset):
        left_out = getattr(DATASETS.get(node['type']), 'LEFT_OUT', None) \
            if isinstance(node.get('type'), str) else None
        if left_out:
            node.update(left_out)
            return dataset
    name = getattr(cfg, 'filename', None) or 'the config'
    raise ValueError(f"validation.source='unused' holds the validation part out of the items a "
                     f"reduced training set leaves out, but {name}'s train_dataloader.dataset "
                     f"({dataset.get('type')}) reduces nothing (e.g. ClassSubsetDataset does); "
                     "use validation.source='train'.")


def _chain(dataset: Any) -> Iterator[dict]:
    """A dataset config and the configs it wraps, outermost first (its ``dataset`` key)."""
    while isinstance(dataset, dict):
        yield dataset
        dataset = dataset.get('dataset')


def _pipeline_of(dataset: Any) -> Optional[list]:
    """The first ``pipeline`` along a dataset config's ``dataset`` chain (``None``: none)."""
    return next((copy.deepcopy(node['pipeline']) for node in _chain(dataset)
                 if 'pipeline' in node), None)


def _with_pipeline(dataset: dict, pipeline: Optional[list]) -> dict:
    """A copy of ``dataset`` whose first ``pipeline`` along its ``dataset`` chain is
    ``pipeline`` (the val dataloader's: held-out items are not augmented)."""
    dataset = copy.deepcopy(dict(dataset))
    for node in _chain(dataset):
        if 'datasets' in node:
            raise ValueError(f"validation.split='holdout' cannot give the held-out part the "
                             f"val pipeline: train_dataloader.dataset ({node.get('type')}) "
                             'joins several datasets; split one dataset, or use '
                             'validation.split=test.')
        if 'pipeline' in node:
            node['pipeline'] = pipeline
            break
    return dataset
