"""The Distiller: a student trained with a frozen teacher and registered methods."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from kdbench.registry import DISTILL_METHODS, MODELS
from kdbench.utils.weights import load_task_weights, resolve_weights

from .base import DistillMethod
from .speed import SpeedOptions, reject_unknown_arguments
from .taps import Taps, resolve_taps


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
        data_preprocessor: defaults to the student's; the teacher sees the same inputs.
        speed: the speed switches, none of which changes the maths, as one dict, e.g.
            ``speed=dict(teacher_dtype='float16', channels_last=True,
            compile_student=True, teacher_mode='inference_mode')``; documented in
            :class:`~kdbench.distill.speed.SpeedOptions`. The first loss step always runs
            eagerly under ``no_grad`` to check the taps; the fast paths start after it.
    """

    def __init__(self, student: dict, teacher: dict, teacher_ckpt: Optional[str],
                 methods: Mapping[str, Optional[dict]], student_loss_weight: float = 1.0,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 speed: Optional[dict] = None, **unknown: Any):
        reject_unknown_arguments('Distiller', unknown)
        if data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.student = MODELS.build(student)
        self.teacher = MODELS.build(teacher)
        load_task_weights(self.teacher, teacher_ckpt, owner='teacher')
        # The local file (a torchvision:// name or URL's hub-cache copy), for hooks to read.
        self.teacher_ckpt = resolve_weights(teacher_ckpt, 'model.teacher_ckpt') or teacher_ckpt
        self.teacher.requires_grad_(False)
        self.teacher.eval()
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
        self._student_points = resolve_taps(self.student, names, 'student')
        self._teacher_points = resolve_taps(self.teacher, names, 'teacher')
        for method in self.methods.values():
            method.bind({t: self._student_points[t] for t in method.taps},
                        {t: self._teacher_points[t] for t in method.taps})
            method.check_student(self.student, {t: self._student_points[t] for t in method.taps})
        self.speed = SpeedOptions.from_config(speed)
        self.speed.apply(self.student, self.teacher, self.methods)
        # Cached once for the per-step guard (a few microseconds, no module traversal).
        self._teacher_params = tuple(self.teacher.parameters())
        self._teacher_modules = tuple(self.teacher.modules())
        # Set after the first loss step has checked the taps eagerly: the speed switches'
        # fast steps (``SpeedOptions``) start then.
        self._taps_checked = False

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
        return self.student(self.speed.format_inputs(inputs), data_samples, mode=mode)

    def teacher_forward(self, inputs: Tensor) -> Dict[str, Tensor]:
        """The frozen teacher's tapped tensors for ``inputs`` ``[N, 3, H, W]``.

        Runs without autograd (``speed.teacher_mode``) in ``speed.teacher_dtype``; the
        tensors come back as ordinary (non-inference) tensors in the inputs' floating
        dtype, without history.
        """
        context = self.speed.teacher_context(fast=self._taps_checked)
        with context, Taps(self.teacher, self._teacher_points) as taps:
            self.teacher(self.speed.teacher_inputs(inputs), mode='tensor')
        return self.speed.teacher_outputs(taps.tensors(), inputs.dtype)

    def teacher_predict(self, data: dict) -> Any:
        """The teacher's ``predict`` outputs for a raw data batch (as the student's
        ``val_step`` takes it): what :class:`~kdbench.hooks.TeacherMetricHook` evaluates."""
        data = self.data_preprocessor(data, False)
        inputs = self.speed.teacher_inputs(self.speed.format_inputs(data['inputs']))
        with torch.no_grad():
            return self.teacher(inputs, data['data_samples'], mode='predict')

    def student_forward(self, inputs: Tensor, data_samples: Any
                        ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """The student's task losses and tapped tensors (with autograd) for one batch."""
        forward, compiled = self.speed.student_forward(self.student, fast=self._taps_checked)
        with Taps(self.student, self._student_points, check_inplace=not compiled) as taps:
            losses = self.speed.call_student(forward, compiled, inputs, data_samples)
        return losses, taps.tensors()

    def loss(self, inputs: Tensor, data_samples: Any) -> Dict[str, Tensor]:
        """Student task losses (scaled) plus every method's ``loss_*`` terms."""
        self.check_teacher_frozen()
        inputs = self.speed.format_inputs(inputs)
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


def _drop_teacher_keys(module: nn.Module, state_dict: dict, prefix: str,
                       local_metadata) -> None:
    """State-dict hook: the teacher's weights come from ``teacher_ckpt``, not checkpoints."""
    for key in [k for k in state_dict if k.startswith(f'{prefix}teacher.')]:
        del state_dict[key]


def _ignore_missing_teacher(module: nn.Module, incompatible_keys) -> None:
    """Load hook: Distiller checkpoints carry no teacher weights, so do not report them."""
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if not k.startswith('teacher.')]
