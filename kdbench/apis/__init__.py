"""Entry points shared by the tools."""
from kdbench.utils.amp import enable_amp

from .config import load_config, task_model_cfg
from .experiment import evaluate, train
from .outputs import add_sample_outputs, enable_tta
from .preflight import (PreflightError, missing_inputs, preflight, preflight_or_exit,
                        resume_checkpoint)
from .runner import KDRunner
from .vis import enable_vis_backends

__all__ = ['KDRunner', 'PreflightError', 'add_sample_outputs', 'enable_amp', 'enable_tta',
           'enable_vis_backends', 'evaluate', 'load_config', 'missing_inputs', 'preflight',
           'preflight_or_exit', 'resume_checkpoint', 'task_model_cfg', 'train']
