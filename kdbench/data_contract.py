"""The dataset contract: what kdbench reads from a dataset beyond ``len`` and indexing.

A kdbench dataset is a map-style ``torch.utils.data.Dataset`` registered in ``DATASETS``
whose samples its task's collate function and model take. The hooks below are optional;
each has a default, so a dataset implementing none of them trains and tests, and only the
tool reading a hook does less. :class:`KDDataset` (datasets) and :class:`KDTestMetric`
(test metrics) hold the defaults; deriving from them states the intent, and any other
class (mmengine's ``ConcatDataset``/``RepeatDataset``, torchvision datasets, in-memory
demo sets) may implement a hook under the same name. kdbench reads the hooks only through
the reader functions of this module, which give the default where an object lacks one.

* ``required_files``: classmethod or staticmethod
  ``(data_root, split=..., **options) -> Dict[str, str]`` called with the dataset
  config's keys except ``type``; ``{what: path}`` of the files that must exist before the
  dataset is built. Default ``{}``. Read by the preflight (:mod:`kdbench.apis.preflight`,
  reader :func:`required_files`), which lists every missing one before the Runner is
  built, as ``<loader>.dataset (<type>): <what> not found: <path>``.
* ``HOW_TO_PREPARE``: class attribute ``str``, how to make the files the dataset reads
  (a command, e.g. ``'python tools/prepare_cifar100.py --download'``, or a layout to
  extract). Default ``None``. Read by the preflight (reader :func:`how_to_prepare`), which
  adds it to the message when the dataset's data root or files are missing.
* ``SPLIT_SIZES``: class attribute ``Dict[str, int]``, images per published split.
  Default ``{}``. Read by ``train_set_size`` (:mod:`kdbench.apis.recipe`, reader
  :func:`split_sizes`) to count iterations per epoch without the data.
* ``sample_files()``: method ``-> Iterator[str]``, every file the dataset reads for its
  samples. Default: the paths of its ``samples`` ``(path, label)`` pairs, none without
  them (in-memory sets). Read by the teacher-metric cache
  (:mod:`kdbench.hooks.teacher_metric`, reader :func:`sample_files`), whose key covers
  the files' sizes and times.
* ``check_sample(index)``: method, decodes and checks sample ``index`` without the
  pipeline, raising ``FileNotFoundError``/``ValueError`` naming the faulty file. Default:
  ``self[index]`` (loaded through the pipeline). Read by ``tools/check_dataset.py``
  (readers :func:`sample_checker`, :func:`checks_samples`).
* ``item_classes()``: method ``-> Optional[np.ndarray]``, the class of every item
  (int ``[N]``), for splits stratified per class. Default: ``None`` (split by item: an
  image, a scene). Read by the held-out validation split (:mod:`kdbench.holdout`, reader
  :func:`item_classes`).
* ``HOLDOUT_DEFAULT``: class attribute ``Dict[str, int | float]``, the default held-out
  validation part when the config gives neither size nor fraction: ``{'size': items}`` or
  ``{'fraction': share}``. Default ``{'fraction': 0.1}`` (torchdistill's 0.9/0.1 split).
  Read by :class:`~kdbench.holdout.HoldoutSplit` (reader :func:`holdout_default`).
* ``sample_writer``: attribute of a test METRIC class, the registered name of the metric
  writing per-sample records and pictures. Default ``None`` (no per-sample outputs). Read
  by ``tools/test.py --out/--show-dir`` (:mod:`kdbench.apis.outputs`, reader
  :func:`sample_writer`).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Optional, Union

import numpy as np

from torch.utils.data import Dataset


class KDDataset(Dataset):
    """Base of kdbench's datasets: the optional hooks of the dataset contract with their
    defaults (see the module docstring). Subclasses override what they can tell."""

    #: Images per published split, e.g. ``{'train': 50000, 'test': 10000}``.
    SPLIT_SIZES: Dict[str, int] = {}
    #: How to make the files the dataset reads (a command or a layout), for the preflight.
    HOW_TO_PREPARE: Optional[str] = None
    #: The held-out validation part when the config gives no size: ``{'size': n}`` or
    #: ``{'fraction': f}`` (docs/validation.md lists each dataset's).
    HOLDOUT_DEFAULT: Dict[str, Union[int, float]] = {'fraction': 0.1}

    @classmethod
    def required_files(cls, data_root: str, split: Optional[str] = None,
                       **options: Any) -> Dict[str, str]:
        """``{what: path}`` of the files that must exist before the dataset is built from
        ``data_root`` and the rest of its config (``options``); none by default."""
        return {}

    def sample_files(self) -> Iterator[str]:
        """Every file the dataset reads for its samples: by default the paths of its
        ``samples`` ``(path, label)`` pairs, none when it has no ``samples``."""
        return _paths_of_samples(self)

    def check_sample(self, index: int) -> None:
        """Decode and check sample ``index``, raising ``FileNotFoundError``/``ValueError``
        naming the faulty file; by default it is loaded through the pipeline."""
        self[index]

    def item_classes(self) -> Optional[np.ndarray]:
        """The class of every item (int ``[N]``) for stratified splits; ``None`` (split
        by item) by default."""
        return None


class KDTestMetric:
    """Mixin of a test metric (an mmengine ``BaseMetric``): the dataset contract's
    ``sample_writer``, the registered name of the metric writing per-sample outputs for
    ``tools/test.py --out/--show-dir`` (``None``: there are none)."""

    sample_writer: Optional[str] = None


def _paths_of_samples(dataset) -> Iterator[str]:
    for sample in getattr(dataset, 'samples', None) or ():
        yield sample[0]


def _own_hook(obj, name: str) -> Optional[Callable]:
    """``obj``'s callable ``name`` unless it lacks one or has :class:`KDDataset`'s default."""
    hook = getattr(obj, name, None)
    inherited = getattr(hook, '__func__', hook) is getattr(KDDataset, name)
    return hook if callable(hook) and not inherited else None


def required_files(dataset_cls, options: Dict[str, Any]) -> Dict[str, str]:
    """``dataset_cls.required_files(**options)`` (``options``: the dataset config without
    ``type``); ``{}`` for classes without the hook and for ``None`` (an unknown type)."""
    hook = getattr(dataset_cls, 'required_files', None)
    return dict(hook(**options)) if callable(hook) else {}


def how_to_prepare(dataset_cls) -> Optional[str]:
    """``dataset_cls.HOW_TO_PREPARE``; ``None`` for classes without it and for ``None``."""
    return getattr(dataset_cls, 'HOW_TO_PREPARE', None) or None


def split_sizes(dataset_cls) -> Dict[str, int]:
    """``dataset_cls.SPLIT_SIZES``; ``{}`` for classes without it and for ``None``."""
    return dict(getattr(dataset_cls, 'SPLIT_SIZES', None) or {})


def sample_files(dataset) -> Iterator[str]:
    """The files ``dataset`` reads for its samples: its ``sample_files()``, else the
    paths of its ``samples`` pairs (torchvision's ``ImageFolder``), else none."""
    hook = getattr(dataset, 'sample_files', None)
    return iter(hook()) if callable(hook) else _paths_of_samples(dataset)


def checks_samples(dataset) -> bool:
    """Whether ``dataset`` has its own ``check_sample`` (else samples are checked by
    loading them through the pipeline)."""
    return _own_hook(dataset, 'check_sample') is not None


def sample_checker(dataset) -> Callable[[int], Any]:
    """``index -> None`` that decodes and checks one sample: the dataset's own
    ``check_sample``, else loading ``dataset[index]`` through the pipeline."""
    return _own_hook(dataset, 'check_sample') or dataset.__getitem__


def item_classes(dataset) -> Optional[np.ndarray]:
    """``dataset.item_classes()`` (int ``[N]``); ``None`` for datasets without the hook."""
    hook = getattr(dataset, 'item_classes', None)
    return hook() if callable(hook) else None


def holdout_default(dataset_cls) -> Dict[str, Union[int, float]]:
    """``dataset_cls.HOLDOUT_DEFAULT``; :class:`KDDataset`'s for classes without it."""
    return dict(getattr(dataset_cls, 'HOLDOUT_DEFAULT', None) or KDDataset.HOLDOUT_DEFAULT)


def sample_writer(metric_cls) -> Optional[str]:
    """The registered name of the per-sample writer a test metric class names, or
    ``None`` (also for ``None``, an unknown metric type)."""
    return getattr(metric_cls, 'sample_writer', None)
