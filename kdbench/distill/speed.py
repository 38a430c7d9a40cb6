"""The Distiller's speed switches: teacher autograd mode and dtype, channels_last, and
torch.compile of the student (documented in :class:`kdbench.distill.Distiller`)."""
from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Union

import torch
from torch import Tensor

if TYPE_CHECKING:
    from .distiller import Distiller

TEACHER_MODES = ('no_grad', 'inference_mode')
TEACHER_DTYPES = ('float16', 'bfloat16')


class SpeedOptions:
    """The Distiller's speed switches (documented in :class:`Distiller`); none changes
    the maths. Holds the compiled student forward, if any (not a submodule, so the
    checkpoint keys stay ``student.*``)."""

    def __init__(self, teacher_mode: str = 'no_grad', teacher_dtype: Optional[str] = None,
                 channels_last: bool = False, compile_student: Union[bool, dict] = False):
        if teacher_mode not in TEACHER_MODES:
            raise ValueError(f"Distiller teacher_mode must be one of {TEACHER_MODES}, got "
                             f"'{teacher_mode}'.")
        if teacher_dtype is not None and teacher_dtype not in TEACHER_DTYPES:
            raise ValueError(f'Distiller teacher_dtype must be None or one of '
                             f"{TEACHER_DTYPES}, got '{teacher_dtype}'.")
        self.teacher_mode = teacher_mode
        self.teacher_dtype = getattr(torch, teacher_dtype) if teacher_dtype else None
        self.channels_last = bool(channels_last)
        self.compile_options = None
        if compile_student:
            self.compile_options = {} if compile_student is True else dict(compile_student)
        self.compiled: Optional[Callable] = None

    def apply(self, distiller: 'Distiller') -> None:
        """Convert the built networks and compile the student's forward."""
        if self.teacher_dtype is not None:
            distiller.teacher.to(self.teacher_dtype)
        if self.channels_last:
            for module in (distiller.student, distiller.teacher, distiller.methods):
                module.to(memory_format=torch.channels_last)
        if self.compile_options is not None:
            _check_compiler(self.compile_options)
            self.compiled = torch.compile(distiller.student.forward, **self.compile_options)

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
                    'above); set model.compile_student=False, or choose another backend, '
                    "e.g. model.compile_student=dict(backend='aot_eager').") from error
            raise


def _check_compiler(options: dict) -> None:
    """Inductor on CPU compiles C++: fail early and clearly when no compiler exists."""
    if options.get('backend', 'inductor') != 'inductor' or torch.cuda.is_available():
        return
    if not any(shutil.which(c) for c in (os.environ.get('CXX', 'c++'), 'g++', 'clang++')):
        raise RuntimeError('compile_student: torch.compile (inductor) needs a C++ compiler on '
                           "CPU and none was found (set CXX or install g++); use "
                           "compile_student=dict(backend='aot_eager') or False.")
