"""mmengine runner hooks ("hooks" in kdbench always means runner hooks, never taps)."""
from .environment import EnvironmentRecordHook
from .nonfinite import NonFiniteLossError, NonFiniteLossGuard, NonFiniteSkipOptimWrapper
from .progress import ProgressHook
from .random_state import RandomStateHook
from .resume_check import ResumeCheckHook
from .teacher_metric import TeacherMetricHook

__all__ = ['EnvironmentRecordHook', 'NonFiniteLossError', 'NonFiniteLossGuard',
           'NonFiniteSkipOptimWrapper', 'ProgressHook', 'RandomStateHook', 'ResumeCheckHook',
           'TeacherMetricHook']
