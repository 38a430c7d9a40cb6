"""Explanations of trained task models and of what a student learned from its teacher:
class activation maps, Grad-CAM/HiResCAM, UniCAM, and the FSS/RS scores."""
from .cams import cam_grid, model_cams, visualize_cams
from .distillation import explain_distillation
from .functional import distance_correlation_sqr, partial_distance_correlation_sqr
from .maps import cam_maps, grad_cam, unicam

__all__ = ['cam_grid', 'cam_maps', 'distance_correlation_sqr', 'explain_distillation',
           'grad_cam', 'model_cams', 'partial_distance_correlation_sqr', 'unicam',
           'visualize_cams']
