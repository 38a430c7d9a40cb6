"""The Distiller: a student trained with a frozen teacher and registered methods."""
from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from kdbench.registry import DISTILL_METHODS, MODELS
from kdbench.task import check_class_taps, task_of
from kdbench.utils.weights import load_task_weights, resolve_weights

from .base import DistillMethod
from .speed import SWITCHES, SpeedOptions, check_compiler
from .taps import TapPoint, Taps, resolve_taps
from .teacher_inputs import teacher_inputs

if TYPE_CHECKING:
    from .shared_teacher import SharedTeacher


@MODELS.register_module()
class Distiller(BaseModel):
    """Student + frozen teacher + distillation methods, as one mmengine model.

    In ``loss`` mode the teacher runs under ``no_grad`` with taps on the points the
    methods need, then the student computes its task loss with the same taps, and every
    method turns the tapped tensors into ``loss_*`` terms. ``predict``/``tensor`` modes
    run the student alone. The teacher is loaded strictly from ``teacher_ckpt``, never
    trained, kept in eval mode (BatchNorm statistics frozen) and left out of checkpoints:
    a Distiller checkpoint holds ``student.*`` (loadable into the plain task model) and
    ``methods.*`` (method parameters).

    Args:
        student: config of the student task model.
        teacher: config of the teacher task model.
        teacher_ckpt: the teacher's checkpoint (required): a local path,
            ``torchvision://NAME`` or a URL (docs/weights.md); a released CIFAR teacher file
            loads as it is.
        methods: ``{name: method config}``; ``name`` gives the loss key ``loss_<name>``.
            A ``None`` entry is skipped, so ``--cfg-options model.methods.kd=None`` removes
            a method inherited from a base config.
        student_loss_weight: factor on the student's own task losses (e.g. CE 0.1 in the
            CIFAR KD recipe; 0 trains from the distillation terms alone).
        data_preprocessor: defaults to the student's; the teacher sees the same inputs,
            unless its config declares its own ``data_preprocessor`` with another mean/std:
            it then gets the batch converted to its normalisation
            (:mod:`~kdbench.distill.teacher_inputs`, :attr:`teacher_normalisation`).
        speed: the speed switches, none of which changes the maths, as one dict, e.g.
            ``speed=dict(teacher_dtype='float16', channels_last=True,
            compile_student=True, teacher_mode='inference_mode')``; documented in
            :class:`~kdbench.distill.speed.SpeedOptions` (:attr:`speed`). The first loss
            step always runs eagerly under ``no_grad`` to check the taps; the fast paths
            (teacher mode, compiled student) start after it.
        load_teacher: ``False`` builds without reading ``teacher_ckpt`` (the teacher keeps
            its initial weights): for recipe cards, meta-device builds and shape checks;
            never for training. Such a Distiller refuses :meth:`teacher_forward` (so every
            loss step) and :meth:`teacher_predict`.
    """

    def __init__(self, student: dict, teacher: dict, teacher_ckpt: Optional[str],
                 methods: Mapping[str, Optional[dict]], student_loss_weight: float = 1.0,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 speed: Optional[dict] = None, load_teacher: bool = True, **unknown: Any):
        _reject_unknown_arguments(unknown)
        if data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = MODELS.build(student)
        self.teacher = MODELS.build(teacher)
        self.teacher_ckpt = teacher_ckpt
        self._teacher_loaded = bool(load_teacher)
        if self._teacher_loaded:
            load_task_weights(self.teacher, teacher_ckpt, owner='teacher')
            # The local file (a torchvision:// name or URL's hub-cache copy), for hooks.
            self.teacher_ckpt = resolve_weights(teacher_ckpt, 'model.teacher_ckpt') or teacher_ckpt
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        #: The teacher's own input normalisation (None: the student's batch as it is).
        self.teacher_normalisation = teacher_inputs(self.data_preprocessor,
                                                    self.teacher.data_preprocessor, teacher)
        self._register_state_dict_hook(_drop_teacher_keys)
        self.register_load_state_dict_post_hook(_ignore_missing_teacher)
        self.student_loss_weight = float(student_loss_weight)

        self.methods = nn.ModuleDict()
        for name, cfg in (methods or {}).items():
            if cfg is None:
                continue
            method: DistillMethod = DISTILL_METHODS.build(cfg)
            method.name = name
            self.methods[name] = method
        if not self.methods:
            raise ValueError('The Distiller has no distillation method: set model.methods, '
                             "e.g. methods=dict(kd=dict(type='KD')).")
        names = sorted({tap for m in self.methods.values() for tap in m.taps})
        #: The student's task (:class:`~kdbench.task.TaskSpec`); the teacher's must agree.
        self.task = task_of(self.student, 'student')
        check_class_taps(self.task, task_of(self.teacher, 'teacher'), self.methods)
        self._student_points = resolve_taps(self.student, names, 'student')
        self._teacher_points = resolve_taps(self.teacher, names, 'teacher')
        for method in self.methods.values():
            method.bind({t: self._student_points[t] for t in method.taps},
                        {t: self._teacher_points[t] for t in method.taps})
            method.check_student(self.student, {t: self._student_points[t] for t in method.taps})
        self.speed = SpeedOptions.from_config(speed)
        self._compiled_student = self._apply_speed()
        # Cached once for the per-step guard (a few microseconds, no module traversal).
        self._teacher_params = tuple(self.teacher.parameters())
        self._teacher_modules = tuple(self.teacher.modules())
        # Set after the first loss step has checked the taps eagerly: the speed switches'
        # fast steps start then.
        self._taps_checked = False
        # A cohort's teacher shared with other Distillers (share_teacher), else None.
        self._shared_teacher: Optional['SharedTeacher'] = None

    def _apply_speed(self) -> Optional[Callable]:
        """Convert the built modules to :attr:`speed`'s dtype and memory format; the
        student's compiled forward, or ``None`` when ``compile_student`` is off."""
        if self.speed.teacher_dtype is not None:
            self.teacher.to(self.speed.teacher_dtype)
        if self.speed.channels_last:
            for module in (self.student, self.teacher, self.methods):
                module.to(memory_format=torch.channels_last)
        if self.speed.compile_student is None:
            return None
        check_compiler(self.speed.compile_student)
        return torch.compile(self.student.forward, **self.speed.compile_student)

    def __getstate__(self) -> dict:
        """Copies (``copy.deepcopy``, e.g. for an EMA model) and pickles run the student
        eagerly: the compiled forward is bound to the original student."""
        return dict(super().__getstate__(), _compiled_student=None, _shared_teacher=None)

    @property
    def student_points(self) -> Mapping[str, TapPoint]:
        """The student's tap points the methods read, by logical name (read-only)."""
        return MappingProxyType(self._student_points)

    @property
    def teacher_points(self) -> Mapping[str, TapPoint]:
        """The teacher's tap points the methods read, by logical name (read-only)."""
        return MappingProxyType(self._teacher_points)

    @property
    def student_compiled(self) -> bool:
        """Whether fast steps run the student's forward through ``torch.compile`` (off
        in copies of a compiling Distiller, see :meth:`__getstate__`)."""
        return self._compiled_student is not None

    def init_weights(self) -> None:
        """Initialise the student (and its own init_cfg); never the loaded teacher."""
        if hasattr(self.student, 'init_weights'):
            self.student.init_weights()

    def train(self, mode: bool = True) -> 'Distiller':
        """Switch the student and methods; the teacher always stays in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, inputs: Tensor, data_samples: Optional[Any] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], Any]:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(self.format_inputs(inputs), data_samples, mode=mode)

    def format_inputs(self, inputs: Tensor) -> Tensor:
        """``inputs`` in the networks' memory format: a 4-D image batch ``[N, C, H, W]``
        becomes channels_last when ``speed.channels_last`` is on; inputs of any other rank
        (or with the switch off) are returned unchanged."""
        if self.speed.channels_last and inputs.dim() == 4:
            return inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def teacher_forward(self, inputs: Tensor) -> Dict[str, Tensor]:
        """The frozen teacher's tapped tensors for ``inputs`` ``[N, 3, H, W]`` (already
        through :meth:`format_inputs`).

        Runs without autograd (``speed.teacher_mode`` on fast steps, else ``no_grad``) in
        ``speed.teacher_dtype``; the tensors come back as ordinary (non-inference) tensors
        in the inputs' floating dtype, without history. After :meth:`share_teacher` they
        come from the shared teacher (computed once per batch for every Distiller sharing it).
        """
        self._check_teacher_loaded()
        if self._shared_teacher is not None:
            return self._shared_teacher.outputs(inputs, tuple(self._teacher_points))
        return self.run_teacher(inputs, self._teacher_points)

    def run_teacher(self, inputs: Tensor, points: Mapping[str, TapPoint]) -> Dict[str, Tensor]:
        """The teacher's tensors at ``points`` (by logical name) for ``inputs``, as
        :meth:`teacher_forward` describes (that method with this Distiller's points)."""
        inference = self._taps_checked and self.speed.teacher_mode == 'inference_mode'
        context = torch.inference_mode() if inference else torch.no_grad()
        with context, Taps(self.teacher, points) as taps:
            self.teacher(self._teacher_inputs(inputs), mode='tensor')
        dtype = self.speed.teacher_dtype
        outputs = {}
        for name, tensor in taps.tensors().items():
            if dtype is not None and tensor.dtype == dtype:
                tensor = tensor.to(inputs.dtype)
            outputs[name] = tensor.clone() if tensor.is_inference() else tensor
        return outputs

    def share_teacher(self, shared: 'SharedTeacher') -> None:
        """Use ``shared.teacher`` as this Distiller's teacher and read the tapped tensors
        from ``shared`` (a cohort: one teacher module and one teacher forward per batch for
        several Distillers; docs/cohorts.md). Call it through
        :meth:`SharedTeacher.add <kdbench.distill.shared_teacher.SharedTeacher.add>`, which
        checks that both teachers are the same; this Distiller's own teacher is released."""
        self.teacher = shared.teacher
        self._teacher_params = tuple(self.teacher.parameters())
        self._teacher_modules = tuple(self.teacher.modules())
        self._shared_teacher = shared

    def _teacher_inputs(self, inputs: Tensor) -> Tensor:
        if self.teacher_normalisation is not None:
            inputs = self.teacher_normalisation(inputs)
        dtype = self.speed.teacher_dtype
        return inputs if dtype is None else inputs.to(dtype)

    def teacher_predict(self, data: dict) -> Any:
        """The teacher's ``predict`` outputs for a raw data batch (as the student's
        ``val_step`` takes it): what :class:`~kdbench.hooks.TeacherMetricHook` evaluates."""
        self._check_teacher_loaded()
        data = self.data_preprocessor(data, False)
        inputs = self._teacher_inputs(self.format_inputs(data['inputs']))
        with torch.no_grad():
            return self.teacher(inputs, data['data_samples'], mode='predict')

    def student_forward(self, inputs: Tensor, data_samples: Any
                        ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """The student's task losses and tapped tensors (with autograd) for one batch of
        :meth:`format_inputs` inputs; compiled on fast steps when ``compile_student`` is on."""
        compiled = self._taps_checked and self._compiled_student is not None
        with Taps(self.student, self._student_points, check_inplace=not compiled) as taps:
            if compiled:
                losses = _run_compiled(self._compiled_student, inputs, data_samples)
            else:
                losses = self.student(inputs, data_samples, mode='loss')
        return losses, taps.tensors()

    def loss(self, inputs: Tensor, data_samples: Any) -> Dict[str, Tensor]:
        """Student task losses (scaled) plus every method's ``loss_*`` terms."""
        self.check_teacher_frozen()
        inputs = self.format_inputs(inputs)
        teacher = self.teacher_forward(inputs)
        student_losses, student = self.student_forward(inputs, data_samples)
        self._taps_checked = True
        losses = {k: v * self.student_loss_weight if 'loss' in k else v
                  for k, v in student_losses.items()}
        for name, method in self.methods.items():
            terms = method(student, teacher, data_samples)
            clash = set(terms) & set(losses)
            if clash:
                raise KeyError(f"Method '{name}' returns keys {sorted(clash)} that another "
                               'loss already uses; give the methods distinct names.')
            losses.update(terms)
        return losses

    def check_teacher_frozen(self) -> None:
        """Raise if the teacher left eval mode or has parameters that require grad.

        Run at every ``loss`` call: something calling ``teacher.train()`` (or ``.train()``
        on one of its submodules) or ``teacher.requires_grad_(True)`` after construction
        would let BatchNorm statistics drift or gradients reach the teacher.
        """
        if any(m.training for m in self._teacher_modules):
            names = [n for n, m in self.teacher.named_modules() if n and m.training]
            which = ('the teacher itself' if self.teacher.training else
                     f'{len(names)} of its modules, e.g. {names[:3]}')
            raise RuntimeError(
                f"The Distiller's teacher is in training mode ({which}): something called "
                '.train() on the teacher or one of its modules after the Distiller was built, '
                'so its BatchNorm statistics would change. Call distiller.train() (it keeps '
                'the teacher in eval mode) or distiller.teacher.eval(); never teacher.train().')
        if any(p.requires_grad for p in self._teacher_params):
            names = [n for n, p in self.teacher.named_parameters() if p.requires_grad]
            raise RuntimeError(
                f"The Distiller's teacher has {len(names)} parameters that require grad "
                f'(e.g. {names[:3]}): something called requires_grad_(True) on the teacher '
                'after the Distiller was built, so it would get gradients. Call '
                'distiller.teacher.requires_grad_(False); parameters meant to be trained '
                'belong to the student or to a method.')

    def _check_teacher_loaded(self) -> None:
        if not self._teacher_loaded:
            raise RuntimeError(
                'This Distiller was built with load_teacher=False: its teacher was not read '
                f'from teacher_ckpt ({self.teacher_ckpt!r}) and has random weights, so it can '
                'neither train nor be evaluated (recipe cards and shape checks only). Remove '
                'model.load_teacher=False from the config.')


def _run_compiled(forward: Callable, inputs: Tensor, data_samples: Any) -> Dict[str, Tensor]:
    """``forward(inputs, data_samples, mode='loss')`` of the compiled student; a compiler
    failure raises a ``RuntimeError`` that says how to turn compilation off."""
    try:
        return forward(inputs, data_samples, mode='loss')
    except Exception as error:
        from torch._dynamo.exc import TorchDynamoException
        if isinstance(error, TorchDynamoException):
            raise RuntimeError(
                'torch.compile of the student failed on this machine (see the error above); '
                'set model.speed.compile_student=False, or choose another backend, e.g. '
                "model.speed.compile_student=dict(backend='aot_eager').") from error
        raise


def _reject_unknown_arguments(arguments: Mapping[str, Any]) -> None:
    """Raise a ``TypeError`` for arguments the Distiller does not take; a speed switch
    given directly (the old flat form) names its key under ``model.speed``."""
    moved = [name for name in arguments if name in SWITCHES]
    if moved:
        keys = ', '.join(f'model.speed.{name}' for name in moved)
        example = ', '.join(f'{name}={arguments[name]!r}' for name in moved)
        raise TypeError(f'Distiller got {moved}: the speed switches are one argument now; '
                        f'set {keys} (speed=dict({example})), see kdbench/distill/speed.py.')
    if arguments:
        raise TypeError(f'Distiller got unexpected arguments {sorted(arguments)}.')


def _drop_teacher_keys(module: nn.Module, state_dict: dict, prefix: str,
                       local_metadata) -> None:
    """State-dict hook: the teacher's weights come from ``teacher_ckpt``, not checkpoints."""
    for key in [k for k in state_dict if k.startswith(f'{prefix}teacher.')]:
        del state_dict[key]


def _ignore_missing_teacher(module: nn.Module, incompatible_keys) -> None:
    """Load hook: Distiller checkpoints carry no teacher weights, so do not report them."""
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if not k.startswith('teacher.')]
