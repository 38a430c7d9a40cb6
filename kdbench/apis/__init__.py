"""Entry points shared by the tools."""
from kdbench.utils.amp import enable_amp

from .config import load_config, task_model_cfg
from .experiment import evaluate, train
from .preflight import PreflightError, missing_inputs, preflight, preflight_or_exit

__all__ = ['PreflightError', 'enable_amp', 'evaluate', 'load_config', 'missing_inputs',
           'preflight', 'preflight_or_exit', 'task_model_cfg', 'train']
