"""Classification task plugin: datasets, transforms, networks, classifier, top-k metric.

Importing it registers everything into kdbench's registries (configs do so through
``custom_imports = dict(imports=['tasks.classification'])``).
"""
from . import classifier, datasets, metrics, models, outputs, transforms  # noqa: F401
from . import timm_classifier  # noqa: F401

__all__ = ['classifier', 'datasets', 'metrics', 'models', 'outputs', 'timm_classifier',
           'transforms']
