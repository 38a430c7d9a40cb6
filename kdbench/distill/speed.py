"""The Distiller's speed switches (``model.speed``), as data: teacher autograd mode and
dtype, channels_last, and torch.compile of the student. None changes the maths; the
:class:`~kdbench.distill.Distiller` applies them."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, fields
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

TEACHER_MODES = ('no_grad', 'inference_mode')
TEACHER_DTYPES = ('float16', 'bfloat16')
_DTYPES = {name: getattr(torch, name) for name in TEACHER_DTYPES}


@dataclass(frozen=True)
class SpeedOptions:
    """The Distiller's ``speed=dict(...)`` switches; none changes the maths.

    ``speed=dict(teacher_mode='inference_mode', teacher_dtype='float16',
    channels_last=True, compile_student=True)`` in a config, or e.g.
    ``--cfg-options model.speed.teacher_dtype=bfloat16``; :meth:`from_config` reads that
    dict. "Fast" steps are the ones after the Distiller's first loss step, which always
    runs eagerly under ``no_grad`` to check the taps for in-place corruption (inference
    tensors and compiled graphs cannot report it).

    Attributes:
        teacher_mode: ``'no_grad'`` (default) or ``'inference_mode'``: the autograd mode
            of the teacher's forward on fast steps. ``torch.inference_mode`` also skips
            version counters and view tracking; its tapped tensors are cloned into
            ordinary tensors (they could not be saved for backward otherwise), so the
            losses are identical.
        teacher_dtype: ``None`` (the student's dtype) or ``torch.float16`` /
            ``torch.bfloat16`` (``'float16'`` / ``'bfloat16'`` in a config): the teacher's
            weights and inputs in that dtype (half precision on GPUs; bfloat16 on CPUs
            with native support). Its tapped tensors are cast back to the inputs' dtype
            (float32) before the methods see them.
        channels_last: store both networks' (and the methods') 4-D weights and the 4-D
            inputs in the NHWC memory format (faster convolutions on most CPUs and on
            tensor-core GPUs).
        compile_student: ``None`` (off, the default) or the ``torch.compile`` arguments
            (``{}``; ``True`` or ``dict(mode='max-autotune')`` in a config): run the
            student's forward through ``torch.compile`` on fast steps. The compiled forward
            is held by the Distiller, not as a submodule, so checkpoint keys stay
            ``student.*``. Needs a working compiler tool chain (a C++ compiler for inductor
            on CPU); a failure raises with that advice. The compiled forward must always
            run with the student's taps registered: dynamo does not guard on module hooks,
            so a graph traced without them would be reused without them.
    """

    teacher_mode: str = 'no_grad'
    teacher_dtype: Optional[torch.dtype] = None
    channels_last: bool = False
    compile_student: Optional[Dict[str, Any]] = None

    def __post_init__(self) -> None:
        if self.teacher_mode not in TEACHER_MODES:
            raise ValueError(f'model.speed.teacher_mode must be one of {TEACHER_MODES}, got '
                             f"'{self.teacher_mode}'.")
        if self.teacher_dtype is not None and self.teacher_dtype not in _DTYPES.values():
            name = str(self.teacher_dtype).replace('torch.', '')
            raise ValueError(f'model.speed.teacher_dtype must be None or one of '
                             f"{TEACHER_DTYPES}, got '{name}'.")

    @classmethod
    def from_config(cls, speed: Optional[Mapping[str, Any]]) -> 'SpeedOptions':
        """The options of ``model.speed`` (``None``: all off); unknown keys raise."""
        speed = dict(speed or {})
        unknown = sorted(set(speed) - set(SWITCHES))
        if unknown:
            raise ValueError(f'model.speed has unknown keys {unknown}; the switches are '
                             f'{list(SWITCHES)} (kdbench/distill/speed.py).')
        dtype = speed.get('teacher_dtype')
        compile_student = speed.get('compile_student')
        return cls(
            teacher_mode=speed.get('teacher_mode', 'no_grad'),
            teacher_dtype=_DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype,
            channels_last=bool(speed.get('channels_last', False)),
            compile_student=(None if not compile_student else
                             {} if compile_student is True else dict(compile_student)))


#: The keys of ``model.speed`` (the fields of :class:`SpeedOptions`).
SWITCHES: Tuple[str, ...] = tuple(field.name for field in fields(SpeedOptions))


def check_compiler(options: Mapping[str, Any]) -> None:
    """Inductor on CPU compiles C++: fail early and clearly when no compiler exists."""
    if options.get('backend', 'inductor') != 'inductor' or torch.cuda.is_available():
        return
    if not any(shutil.which(c) for c in (os.environ.get('CXX', 'c++'), 'g++', 'clang++')):
        raise RuntimeError('model.speed.compile_student: torch.compile (inductor) needs a C++ '
                           'compiler on CPU and none was found (set CXX or install g++); use '
                           "compile_student=dict(backend='aot_eager') or False.")
