"""The method table: every registered distillation method with what it declares about itself.

Suites, the overhead benchmark, the GPU check and the tests read the methods from here
instead of repeating their names, so a new method is its file, its import in
``kdbench/distill/__init__.py``, its configs and its tests. A method declares (class
attributes of :class:`~kdbench.distill.base.DistillMethod`, all optional):

* ``display_name``: its name in tables (default: the registered name, ``CATKD`` -> set
  ``'CAT-KD'``);
* ``config_prefix``: the prefix of its config names ``{prefix}_{pair}_{dataset}.py``
  (default: the stem of the file defining it, ``cat_kd.py`` -> ``'cat_kd'``).

The order is :data:`METHOD_ORDER` (the shipped methods in the order they joined kdbench),
then the methods it does not name (a user's, a test's) in registration order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Type

from kdbench.registry import DISTILL_METHODS

from .base import DistillMethod

#: The shipped methods' registered names in table order: the order they joined kdbench
#: (a new shipped method is added last).
METHOD_ORDER = ('KD', 'AT', 'CATKD', 'TaT', 'CWD', 'DKD', 'DIST', 'FitNet')


@dataclass(frozen=True)
class MethodEntry:
    """One registered method: registered ``name`` (the config's ``type``), its class, and
    its declared ``display_name`` and ``config_prefix``."""
    name: str
    cls: Type[DistillMethod]
    display_name: str
    config_prefix: str


def registered_methods() -> List[MethodEntry]:
    """Every method in ``DISTILL_METHODS``: those of :data:`METHOD_ORDER` in its order,
    then the others in registration order (parametrise tests, suites and benchmarks over
    this)."""
    registered = DISTILL_METHODS.module_dict
    names = [n for n in METHOD_ORDER if n in registered] + \
        [n for n in registered if n not in METHOD_ORDER]
    entries = []
    for name in names:
        cls = registered[name]
        prefix = cls.__dict__.get('config_prefix') or cls.__module__.rsplit('.', 1)[-1]
        entries.append(MethodEntry(name, cls, cls.__dict__.get('display_name') or name, prefix))
    return entries


def method_by_prefix(prefix: str) -> MethodEntry:
    """The registered method whose configs are named ``{prefix}_*``; KeyError naming the
    known prefixes otherwise."""
    for entry in registered_methods():
        if entry.config_prefix == prefix:
            return entry
    known = [e.config_prefix for e in registered_methods()]
    raise KeyError(f"No registered distillation method has the config prefix '{prefix}'; "
                   f'known: {known}.')
