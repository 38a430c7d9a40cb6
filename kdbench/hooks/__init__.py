"""mmengine runner hooks ("hooks" in kdbench always means runner hooks, never taps)."""
from .progress import ProgressHook

__all__ = ['ProgressHook']
