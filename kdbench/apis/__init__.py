"""Entry points shared by the tools."""
from kdbench.utils.amp import enable_amp

from .config import load_config, task_model_cfg
from .experiment import evaluate, train
from .runner import KDRunner

__all__ = ['KDRunner', 'enable_amp', 'evaluate', 'load_config', 'task_model_cfg', 'train']
