"""The Distiller's speed switches (``model.speed``): teacher autograd mode and dtype,
channels_last, and torch.compile of the student. None changes the maths."""
from __future__ import annotations

import inspect
import os
import shutil
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import Tensor, nn

TEACHER_MODES = ('no_grad', 'inference_mode')
TEACHER_DTYPES = ('float16', 'bfloat16')


class SpeedOptions:
    """The Distiller's ``speed=dict(...)`` switches; none changes the maths.

    ``speed=dict(teacher_mode='inference_mode', teacher_dtype='float16',
    channels_last=True, compile_student=True)`` in a config, or e.g.
    ``--cfg-options model.speed.teacher_dtype=bfloat16``. The switches act on the modules
    handed to :meth:`apply` and on every step's inputs and outputs. "Fast" steps are the
    ones after the Distiller's first loss step, which always runs eagerly under
    ``no_grad`` to check the taps for in-place corruption (inference tensors and compiled
    graphs cannot report it); the Distiller says which step is which (``fast``).

    Args:
        teacher_mode: ``'no_grad'`` (default) or ``'inference_mode'``: the autograd mode
            of the teacher's forward on fast steps. ``torch.inference_mode`` also skips
            version counters and view tracking; its tapped tensors are cloned into
            ordinary tensors (they could not be saved for backward otherwise), so the
            losses are identical.
        teacher_dtype: ``None`` (the student's dtype) or ``'float16'`` / ``'bfloat16'``:
            the teacher's weights and inputs in that dtype (half precision on GPUs;
            bfloat16 on CPUs with native support). Its tapped tensors are cast back to
            the inputs' dtype (float32) before the methods see them.
        channels_last: store both networks' (and the methods') 4-D weights and the inputs
            in the NHWC memory format (faster convolutions on most CPUs and on tensor-core
            GPUs).
        compile_student: ``False`` (default), ``True`` or a dict of ``torch.compile``
            arguments (``dict(mode='max-autotune')``): run the student's forward through
            ``torch.compile`` on fast steps. The compiled forward is held here, not as a
            submodule, so checkpoint keys stay ``student.*``. Needs a working compiler
            tool chain (a C++ compiler for inductor on CPU); a failure raises with that
            advice. The compiled forward must always run with the student's taps
            registered: dynamo does not guard on module hooks, so a graph traced without
            them would be reused without them.
    """

    def __init__(self, teacher_mode: str = 'no_grad', teacher_dtype: Optional[str] = None,
                 channels_last: bool = False, compile_student: Union[bool, dict] = False):
        if teacher_mode not in TEACHER_MODES:
            raise ValueError(f'model.speed.teacher_mode must be one of {TEACHER_MODES}, got '
                             f"'{teacher_mode}'.")
        if teacher_dtype is not None and teacher_dtype not in TEACHER_DTYPES:
            raise ValueError(f'model.speed.teacher_dtype must be None or one of '
                             f"{TEACHER_DTYPES}, got '{teacher_dtype}'.")
        self.teacher_mode = teacher_mode
        self.teacher_dtype = getattr(torch, teacher_dtype) if teacher_dtype else None
        self.channels_last = bool(channels_last)
        self.compile_options = None
        if compile_student:
            self.compile_options = {} if compile_student is True else dict(compile_student)
        self.compiled: Optional[Callable] = None

    @classmethod
    def from_config(cls, speed: Optional[Mapping[str, Any]]) -> 'SpeedOptions':
        """The options of ``model.speed`` (``None``: all off); unknown keys raise."""
        speed = dict(speed or {})
        unknown = sorted(set(speed) - set(SWITCHES))
        if unknown:
            raise ValueError(f'model.speed has unknown keys {unknown}; the switches are '
                             f'{list(SWITCHES)} (kdbench/distill/speed.py).')
        return cls(**speed)

    def apply(self, student: nn.Module, teacher: nn.Module, methods: nn.Module) -> None:
        """Convert the built networks (and the methods' modules) and compile the
        student's forward."""
        if self.teacher_dtype is not None:
            teacher.to(self.teacher_dtype)
        if self.channels_last:
            for module in (student, teacher, methods):
                module.to(memory_format=torch.channels_last)
        if self.compile_options is not None:
            _check_compiler(self.compile_options)
            self.compiled = torch.compile(student.forward, **self.compile_options)

    def __getstate__(self) -> dict:
        """Copies (``copy.deepcopy`` of the Distiller, e.g. for an EMA model) and pickles
        run the student eagerly: a compiled function is bound to the original student."""
        return dict(self.__dict__, compiled=None)

    def format_inputs(self, inputs: Tensor) -> Tensor:
        """``[N, C, H, W]`` inputs in the networks' memory format."""
        if self.channels_last and inputs.dim() == 4:
            return inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def teacher_context(self, fast: bool):
        """The autograd context of the teacher's forward (``no_grad`` until ``fast``)."""
        if fast and self.teacher_mode == 'inference_mode':
            return torch.inference_mode()
        return torch.no_grad()

    def teacher_inputs(self, inputs: Tensor) -> Tensor:
        return inputs if self.teacher_dtype is None else inputs.to(self.teacher_dtype)

    def teacher_outputs(self, tensors: Dict[str, Tensor], dtype: torch.dtype
                        ) -> Dict[str, Tensor]:
        """Tapped teacher tensors back in ``dtype`` and as ordinary tensors."""
        def convert(tensor: Tensor) -> Tensor:
            if self.teacher_dtype is not None and tensor.dtype == self.teacher_dtype:
                tensor = tensor.to(dtype)
            return tensor.clone() if tensor.is_inference() else tensor
        return {name: convert(tensor) for name, tensor in tensors.items()}

    def student_forward(self, student: nn.Module, fast: bool) -> Tuple[Callable, bool]:
        """The student's forward for a step and whether it is the compiled one (on fast
        steps, when ``compile_student`` is on)."""
        if fast and self.compiled is not None:
            return self.compiled, True
        return student, False

    @staticmethod
    def call_student(forward: Callable, compiled: bool, inputs: Tensor,
                     data_samples: Any) -> Dict[str, Tensor]:
        """``forward(inputs, data_samples, mode='loss')``; a compiler failure raises a
        ``RuntimeError`` that says how to turn compilation off."""
        if not compiled:
            return forward(inputs, data_samples, mode='loss')
        try:
            return forward(inputs, data_samples, mode='loss')
        except Exception as error:
            from torch._dynamo.exc import TorchDynamoException
            if isinstance(error, TorchDynamoException):
                raise RuntimeError(
                    'torch.compile of the student failed on this machine (see the error '
                    'above); set model.speed.compile_student=False, or choose another '
                    "backend, e.g. model.speed.compile_student=dict(backend='aot_eager')."
                ) from error
            raise


def _check_compiler(options: dict) -> None:
    """Inductor on CPU compiles C++: fail early and clearly when no compiler exists."""
    if options.get('backend', 'inductor') != 'inductor' or torch.cuda.is_available():
        return
    if not any(shutil.which(c) for c in (os.environ.get('CXX', 'c++'), 'g++', 'clang++')):
        raise RuntimeError('model.speed.compile_student: torch.compile (inductor) needs a C++ '
                           'compiler on CPU and none was found (set CXX or install g++); use '
                           "compile_student=dict(backend='aot_eager') or False.")


#: The keys of ``model.speed`` (the arguments of :class:`SpeedOptions`).
SWITCHES: Tuple[str, ...] = tuple(inspect.signature(SpeedOptions).parameters)


def reject_unknown_arguments(owner: str, arguments: Mapping[str, Any]) -> None:
    """Raise a ``TypeError`` for ``arguments`` that ``owner`` does not take; a speed switch
    given directly (the old flat form) names its key under ``model.speed``."""
    moved = [name for name in arguments if name in SWITCHES]
    if moved:
        keys = ', '.join(f'model.speed.{name}' for name in moved)
        example = ', '.join(f'{name}={arguments[name]!r}' for name in moved)
        raise TypeError(f'{owner} got {moved}: the speed switches are one argument now; '
                        f'set {keys} (speed=dict({example})), see kdbench/distill/speed.py.')
    if arguments:
        raise TypeError(f'{owner} got unexpected arguments {sorted(arguments)}.')
