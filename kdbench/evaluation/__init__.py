"""Evaluation helpers shared by the task plugins."""
from .functional import topk_accuracy, topk_correct

__all__ = ['topk_accuracy', 'topk_correct']
