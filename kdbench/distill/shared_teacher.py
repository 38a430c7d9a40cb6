"""One frozen teacher for several Distillers: one module in memory, one forward per batch.

A cohort (docs/cohorts.md) trains several students with the same teacher on the same
batches. :class:`SharedTeacher` keeps the first Distiller's teacher, makes every other
Distiller use that module (:meth:`~kdbench.distill.distiller.Distiller.share_teacher`,
their own teachers are released) and runs it once per batch with the union of their tap
points; each Distiller then reads its own taps from that result. The teacher is the same
module with the same weights, in eval mode and without autograd, and extra forward hooks
only record tensors, so every Distiller gets exactly the tensors its own teacher would
have given.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from .teacher_inputs import same_conversion

if TYPE_CHECKING:
    from .distiller import Distiller

#: Speed switches that change what the teacher computes or in which memory format the
#: inputs reach it: every Distiller sharing a teacher must have the same values.
TEACHER_SWITCHES = ('teacher_dtype', 'teacher_mode', 'channels_last')


class SharedTeacher:
    """The teacher of ``owner`` (a Distiller), shared with the Distillers :meth:`add` ed.

    :meth:`outputs` computes the tapped tensors of all of them when it sees a batch of
    inputs different from the last one, else returns the last result; :meth:`release`
    drops that result (call it after each batch to free the tensors).
    """

    def __init__(self, owner: 'Distiller'):
        self.owner = owner
        self.teacher: nn.Module = owner.teacher
        self._points = dict(owner.teacher_points)
        self._inputs: Optional[Tensor] = None
        self._outputs: Dict[str, Tensor] = {}
        self._versions: Dict[str, int] = {}
        #: Teacher forward passes run so far (one per distinct batch).
        self.forwards = 0
        owner.share_teacher(self)

    def add(self, distiller: 'Distiller', name: str = 'a member') -> None:
        """Make ``distiller`` read its teacher tensors from this shared teacher.

        Raises ``ValueError`` (naming ``name``, e.g. the member's config) when its teacher
        differs: another checkpoint file, architecture, weights or buffers, other
        :data:`TEACHER_SWITCHES` in ``model.speed``, or another conversion of the inputs to
        the teacher's normalisation (:mod:`~kdbench.distill.teacher_inputs`).
        """
        owner = self.owner
        if distiller.teacher_ckpt != owner.teacher_ckpt:
            raise ValueError(f'{name}: model.teacher_ckpt is {distiller.teacher_ckpt!r}, but the '
                             f'shared teacher was read from {owner.teacher_ckpt!r}; cohort '
                             'members must have the same teacher.')
        for switch in TEACHER_SWITCHES:
            mine, theirs = getattr(distiller.speed, switch), getattr(owner.speed, switch)
            if mine != theirs:
                raise ValueError(f'{name}: model.speed.{switch} is {mine!r}, but the shared '
                                 f'teacher runs with {theirs!r}; cohort members must agree.')
        _check_same_weights(distiller.teacher, self.teacher, name)
        if not same_conversion(distiller.teacher_normalisation, owner.teacher_normalisation):
            raise ValueError(f"{name}: the teacher's input normalisation (its "
                             "data_preprocessor against the Distiller's) differs from the "
                             "shared teacher's; cohort members must feed it alike.")
        self._points.update(distiller.teacher_points)
        distiller.share_teacher(self)

    def outputs(self, inputs: Tensor, names: Sequence[str]) -> Dict[str, Tensor]:
        """The teacher's tensors ``names`` for ``inputs`` ``[N, C, H, W]`` (already through
        the Distiller's ``format_inputs``), computed once for equal inputs.

        Raises ``RuntimeError`` when a tensor handed out earlier was modified in place (a
        method must not change the teacher's tensors: other Distillers read them too).
        """
        if not self._same_inputs(inputs):
            self.release()
            self._outputs = self.owner.run_teacher(inputs, self._points)
            self._versions = {k: v._version for k, v in self._outputs.items()
                              if not v.is_inference()}
            self._inputs = inputs
            self.forwards += 1
        for name, version in self._versions.items():
            if self._outputs[name]._version != version:
                raise RuntimeError(f"The shared teacher's tensor '{name}' was modified in "
                                   'place by a distillation method after the teacher computed '
                                   'it; methods must treat teacher tensors as read-only.')
        return {name: self._outputs[name] for name in names}

    def release(self) -> None:
        """Drop the last batch's inputs and tensors."""
        self._inputs, self._outputs, self._versions = None, {}, {}

    def _same_inputs(self, inputs: Tensor) -> bool:
        last = self._inputs
        return (last is not None and last.shape == inputs.shape and
                last.dtype == inputs.dtype and last.device == inputs.device and
                (last is inputs or torch.equal(last, inputs)))


def _check_same_weights(teacher: nn.Module, shared: nn.Module, name: str) -> None:
    """Raise ``ValueError`` unless both teachers have the same class and equal tensors."""
    if type(teacher) is not type(shared):
        raise ValueError(f'{name}: its teacher is a {type(teacher).__name__}, the shared one a '
                         f'{type(shared).__name__}; cohort members must have the same teacher.')
    mine, theirs = teacher.state_dict(), shared.state_dict()
    if mine.keys() != theirs.keys():
        raise ValueError(f'{name}: its teacher has other parameters than the shared one '
                         '(model.teacher differs); cohort members must have the same teacher.')
    for key, value in mine.items():
        other = theirs[key]
        if value.shape != other.shape or value.dtype != other.dtype or \
                not torch.equal(value, other):
            raise ValueError(f"{name}: its teacher's '{key}' differs from the shared "
                             "teacher's; cohort members must have the same teacher "
                             '(model.teacher and model.teacher_ckpt).')
