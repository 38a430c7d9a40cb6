"""The overhead ratio c / (a + b) each method must reach in ``tools/bench_distill.py``
(:mod:`kdbench.benchmark.overhead`; docs/performance.md explains the values).

Methods are named by their config prefix, tasks by the keys of ``overhead.TASKS``. A
method or task not in :data:`TARGETS` (a new method) is held to :data:`DEFAULT_TARGET`.
"""
from __future__ import annotations

from typing import Dict, Optional

#: The target of every method on every task unless :data:`TARGETS` says otherwise.
DEFAULT_TARGET = 1.05
#: Exceptions, by config prefix, then task; ``None``: no target. TaT trains connector
#: convolutions that the parts do not contain (12-14% of their FLOPs).
TARGETS: Dict[str, Dict[str, Optional[float]]] = {
    'tat': dict(cifar=None, voc=1.15),
}


def ratio_target(task: str, method: str) -> Optional[float]:
    """The ratio ``method`` (a config prefix) must reach on ``task`` (``None``: none)."""
    return TARGETS.get(method, {}).get(task, DEFAULT_TARGET)
