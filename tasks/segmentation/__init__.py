"""Segmentation task plugin: VOC aug and COCOStuff-10k datasets, albumentations pipelines,
DeepLabV3+ (segmentation-models-pytorch) with a tap table, and the mIoU metric.

Importing it registers everything into kdbench's registries (configs do so through
``custom_imports = dict(imports=['tasks.segmentation'])``).
"""
from . import datasets, metrics, outputs, segmentor, transforms, tta  # noqa: F401

__all__ = ['datasets', 'metrics', 'outputs', 'segmentor', 'transforms', 'tta']
