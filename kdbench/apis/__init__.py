"""Entry points shared by the tools."""
from .config import enable_amp, load_config, task_model_cfg
from .experiment import evaluate, train

__all__ = ['enable_amp', 'evaluate', 'load_config', 'task_model_cfg', 'train']
