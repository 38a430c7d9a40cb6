"""Explanations of trained task models: class activation maps of a teacher and a student."""
from .cams import cam_grid, model_cams, visualize_cams

__all__ = ['cam_grid', 'model_cams', 'visualize_cams']
