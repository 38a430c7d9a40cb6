"""Base class of the registered distillation methods."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from torch import Tensor, nn

from .taps import TapPoint


@dataclass(frozen=True)
class TrainingProgress:
    """Where training stands, as a method sees it during one training iteration.

    Set on every method by :class:`~kdbench.hooks.MethodProgressHook` before each training
    iteration, from the runner's state (so a resumed run continues with the right values).

    Args:
        epoch: the epoch being trained, counted from 1 (the first epoch is 1, as DKD's
            warm-up ``min(epoch / warmup, 1)`` expects). In iteration-based runs, the pass
            over the training data: ``iter // iters_per_epoch + 1``.
        iter: iterations completed before this one, counted from 0 (the runner's ``iter``).
        max_epochs: epochs of the run (iteration-based runs: passes over the data, rounded up).
        max_iters: iterations of the run.
    """
    epoch: int
    iter: int
    max_epochs: int
    max_iters: int


class DistillMethod(nn.Module):
    """A distillation method: reads tapped tensors of both models, returns weighted losses.

    Subclasses implement :meth:`forward`, returning ``{'loss_<name>...': tensor}``; the
    Distiller sets :attr:`name` to the method's key in the config (``methods=dict(kd=...)``
    gives ``loss_kd``). Keys of diagnostics must not contain ``'loss'``. Parameters of a
    method (connectors, embeddings) are trained with the student and saved beside it.

    Args:
        taps: logical tap names read from the student and the teacher.
        loss_weight: factor applied to the method's loss.

    Class attributes (read by :mod:`kdbench.distill.table`; set them on a subclass):
    ``display_name`` (its name in tables; default: the registered name) and
    ``config_prefix`` (its config names' prefix; default: its file's stem).
    """

    display_name: Optional[str] = None
    config_prefix: Optional[str] = None

    def __init__(self, taps: Sequence[str], loss_weight: float = 1.0):
        super().__init__()
        if isinstance(taps, str):
            taps = (taps,)
        if not taps:
            raise ValueError(f'{type(self).__name__} needs at least one tap name.')
        self.taps = tuple(taps)
        self.loss_weight = float(loss_weight)
        self.name = type(self).__name__.lower()
        self.progress: Optional[TrainingProgress] = None

    def bind(self, student_points: Mapping[str, TapPoint],
             teacher_points: Mapping[str, TapPoint]) -> None:
        """Called once by the Distiller with the resolved tap points.

        Override to check channel counts or to build connectors sized from
        ``point.channels``. The default accepts any points.
        """

    def check_student(self, student: nn.Module, points: Mapping[str, TapPoint]) -> None:
        """Called once by the Distiller after :meth:`bind` with the built student and its
        tap points: raise when the student lacks what the method needs (e.g. a bias-free
        classifier), naming the config key to set. The default accepts any student."""

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        """Compute the method's losses.

        Args:
            student: tapped student tensors by logical name (with gradients).
            teacher: tapped teacher tensors by logical name (no gradients).
            data_samples: the batch's annotations, for methods that need labels.
        """
        raise NotImplementedError

    def require_one_tap(self, what: str = 'tap') -> None:
        """Refuse a tap list that is not exactly one name (methods reading one tensor)."""
        if len(self.taps) != 1:
            raise ValueError(f'{type(self).__name__} reads exactly one {what}, '
                             f'got taps={self.taps}.')

    def positive(self, name: str, value: float) -> float:
        """``value`` as a float, or a ``ValueError`` naming the argument if it is not > 0."""
        if value <= 0:
            raise ValueError(f'{type(self).__name__} {name} must be positive, got {value}.')
        return float(value)

    def check_same_classes(self, student_points: Mapping[str, TapPoint],
                           teacher_points: Mapping[str, TapPoint]) -> None:
        """Raise unless every (logits) tap has as many channels, i.e. classes, in the
        student as in the teacher."""
        for tap in self.taps:
            student, teacher = student_points[tap].channels, teacher_points[tap].channels
            if student != teacher:
                raise ValueError(f"{type(self).__name__}: the student's '{tap}' has {student} "
                                 f"classes but the teacher's has {teacher}; set the same "
                                 'num_classes in both model configs.')

    def spatial_points(self, student_points: Mapping[str, TapPoint],
                       teacher_points: Mapping[str, TapPoint]) -> Tuple[TapPoint, TapPoint]:
        """The student's and teacher's point of the method's single tap; raise unless it is
        spatial (declares a stride)."""
        tap = self.taps[0]
        student, teacher = student_points[tap], teacher_points[tap]
        if student.stride is None or teacher.stride is None:
            raise ValueError(f"{type(self).__name__} needs a spatial tap; '{tap}' is not one "
                             '(no stride in the tap table). Use a feature or dense logits tap.')
        return student, teacher

    def extra_repr(self) -> str:
        return f'taps={self.taps}, loss_weight={self.loss_weight}'
