"""Input shapes of benchmark and check settings (the batches themselves come from the task
model's :meth:`~kdbench.task.TaskModel.example_batch`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    """Batch size and square input side of one setting."""
    batch: int
    size: int
