"""mmengine runner hooks ("hooks" in kdbench always means runner hooks, never taps)."""
from .environment import EnvironmentRecordHook
from .final_metrics import FinalMetricsHook
from .method_progress import MethodProgressHook, training_progress
from .nonfinite import NonFiniteLossError, NonFiniteLossGuard, NonFiniteSkipOptimWrapper
from .progress import ProgressHook
from .random_state import RandomStateHook
from .resume_check import ResumeCheckHook
from .resume_validation import ResumeValidationHook
from .stall_watchdog import StallWatchdogHook
from .teacher_metric import TeacherMetricHook

__all__ = ['EnvironmentRecordHook', 'FinalMetricsHook', 'MethodProgressHook', 'NonFiniteLossError',
           'NonFiniteLossGuard', 'NonFiniteSkipOptimWrapper', 'ProgressHook', 'RandomStateHook',
           'ResumeCheckHook', 'ResumeValidationHook', 'StallWatchdogHook', 'TeacherMetricHook',
           'training_progress']
