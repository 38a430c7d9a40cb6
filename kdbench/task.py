"""The task contract: what kdbench's core reads of a task plugin (docs/tasks.md).

kdbench never imports a task. A task plugin (``tasks/classification``,
``tasks/segmentation``, or one of a user's) registers datasets, transforms, a metric and
a task model; the core (the Distiller, the methods, the tools and benchmarks) relies only
on what this module states.

**A batch** (what the dataloader's collate function delivers and the model's
``data_preprocessor`` passes on) is ``dict(inputs=..., data_samples=...)``: ``inputs`` a
uint8 (before preprocessing) or float (after) tensor ``[N, ...]`` (images ``[N, 3, H, W]``
for both shipped tasks) and ``data_samples`` a mapping holding the targets under
``'label'`` (read them with :func:`labels`), ``[N, ...]``.

**A task model** is a :class:`TaskModel`: an mmengine ``BaseModel`` with

* ``forward(inputs, data_samples=None, mode)``: ``'tensor'`` -> the network's output;
  ``'loss'`` -> ``{'loss_*': scalar}`` (every term is summed into the training loss);
  ``'predict'`` -> one record (a dict) per sample, which the task's metric consumes;
* ``tap_points``: ``{logical name: TapPoint}`` (:mod:`kdbench.distill.taps`), the points
  distillation methods read; feature taps declare a stride, class logits are the tap
  ``'logits'`` with ``channels`` = classes;
* ``task``: a :class:`TaskSpec` saying how targets look (per sample or per position,
  classes, ignored label);
* ``example_batch(batch_size, size, generator)``: a random batch as the dataloader
  delivers it (benchmarks and checks build inputs from it without knowing the task).

Evaluation: the config's ``val_evaluator``/``test_evaluator`` metric reads the
``'predict'`` records; test-time augmentation is a task model option (a ``tta``
constructor argument, switched on by ``tools/test.py --tta``) where the task has one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional

import torch
from mmengine.model import BaseModel
from torch import Tensor

if TYPE_CHECKING:
    from kdbench.distill.taps import TapPoint

#: The key of the targets in a batch's ``data_samples``.
LABEL_KEY = 'label'


@dataclass(frozen=True)
class TaskSpec:
    """How a task's targets look, as methods and tools may rely on.

    Args:
        name: the task's name in messages and tables (``'classification'``).
        dense: targets per position (``[N, H, W]``, e.g. segmentation) instead of per
            sample (``[N]``).
        num_classes: classes of the ``'logits'`` tap; ``None`` for tasks without class
            logits (regression): logit methods do not apply to them.
        ignore_index: target value excluded from losses and metrics (``None``: none).
    """
    name: str
    dense: bool = False
    num_classes: Optional[int] = None
    ignore_index: Optional[int] = None


def labels(data_samples: Any, owner: str = 'this method') -> Tensor:
    """The targets of a batch (``data_samples['label']``), or a ``KeyError`` that says
    what the task's batches must hold."""
    if not isinstance(data_samples, Mapping) or LABEL_KEY not in data_samples:
        found = sorted(data_samples) if isinstance(data_samples, Mapping) else \
            type(data_samples).__name__
        raise KeyError(f"{owner} reads the batch's targets from data_samples['{LABEL_KEY}'], "
                       f'which this batch lacks (found {found}); a task plugin collates '
                       f"its targets under '{LABEL_KEY}' (docs/tasks.md).")
    return data_samples[LABEL_KEY]


class TaskModel(BaseModel):
    """Base of task models (see the module docstring for the contract).

    Subclasses set ``self.tap_points`` in ``__init__`` and implement :attr:`task` and
    ``forward``. :meth:`example_batch` has a default for class targets (``[N]``, or
    ``[N, S, S]`` when ``task.dense``, with ~5% ``ignore_index`` positions); tasks with
    other targets override it.
    """

    tap_points: Dict[str, 'TapPoint']

    @property
    def task(self) -> TaskSpec:
        raise NotImplementedError(f'{type(self).__name__} must declare its TaskSpec '
                                  '(the task property, docs/tasks.md).')

    def example_batch(self, batch_size: int, size: int,
                      generator: Optional[torch.Generator] = None) -> dict:
        """A random batch as the dataloader delivers it: uint8 images
        ``[batch_size, 3, size, size]`` and targets in ``data_samples['label']``."""
        spec = self.task
        if spec.num_classes is None:
            raise NotImplementedError(f'{type(self).__name__}: a task without classes '
                                      'must override example_batch (docs/tasks.md).')
        n = batch_size
        inputs = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8,
                               generator=generator)
        shape = (n, size, size) if spec.dense else (n,)
        target = torch.randint(0, spec.num_classes, shape, generator=generator)
        if spec.dense and spec.ignore_index is not None:
            target[torch.rand(shape, generator=generator) < 0.05] = spec.ignore_index
        return {'inputs': inputs, 'data_samples': {LABEL_KEY: target}}


def task_of(model: Any, owner: str) -> TaskSpec:
    """The :class:`TaskSpec` of a task model, or a ``TypeError`` naming what is missing."""
    spec = getattr(model, 'task', None) if isinstance(model, TaskModel) else None
    if not isinstance(spec, TaskSpec):
        raise TypeError(f'The {owner} model {type(model).__name__} does not implement the task '
                        'contract: derive it from kdbench.task.TaskModel and declare its '
                        'TaskSpec (docs/tasks.md).')
    return spec


def check_class_taps(student: TaskSpec, teacher: TaskSpec, methods: Mapping[str, Any]) -> None:
    """Raise unless teacher and student are models of one task, and unless every method
    reading the class-logits tap ``'logits'`` (``methods``: name -> method with ``taps``)
    distils a task with classes."""
    if (student.name, student.dense) != (teacher.name, teacher.dense):
        raise ValueError(f'The teacher is a {teacher.name} model and the student a '
                         f'{student.name} model; distillation needs two models of one task.')
    if student.num_classes is None:
        readers = [name for name, method in methods.items() if 'logits' in method.taps]
        if readers:
            raise ValueError(f'methods {readers} read the class-logits tap \'logits\', but the '
                             f'{student.name} task has no classes (TaskSpec.num_classes is '
                             'None): use feature methods (AT, FitNet, TaT, CWD on a feature '
                             'tap) or set their taps to feature taps of the models.')


__all__ = ['LABEL_KEY', 'TaskModel', 'TaskSpec', 'check_class_taps', 'labels', 'task_of']
