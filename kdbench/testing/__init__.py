"""Builders of test and benchmark fixtures: random teacher checkpoints, random batches and
Distillers of shipped configs with random weights.

Used by the tests (``tests/conftest.py``), the overhead benchmark
(:mod:`kdbench.benchmark.overhead`) and the GPU check (:mod:`kdbench.benchmark.gpu_check`,
``tools/gpu_check.py``); nothing here trains or reads a dataset.
"""
from .batches import Shape
from .distillers import DistillerCase, build_distiller_case
from .teachers import TeacherCheckpoints, calibrate_batchnorm, write_random_teacher

__all__ = ['DistillerCase', 'Shape', 'TeacherCheckpoints', 'build_distiller_case',
           'calibrate_batchnorm', 'write_random_teacher']
