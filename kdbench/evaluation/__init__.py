"""Evaluation helpers shared by the task plugins."""
from .functional import confusion_matrix, iou_from_confusion, topk_accuracy, topk_correct

__all__ = ['confusion_matrix', 'iou_from_confusion', 'topk_accuracy', 'topk_correct']
