"""Benchmark suites: run a teacher-student-method matrix, compare with the papers."""
from .plots import plot_methods_vs_baseline, plot_training_curves
from .results import load_reference, markdown_table
from .suite import Run, Suite

__all__ = ['Run', 'Suite', 'load_reference', 'markdown_table', 'plot_methods_vs_baseline',
           'plot_training_curves']
