"""Pure loss functions of every distillation method (the public functional API)."""
from .at import at_loss, attention_map
from .cat_kd import binarize_cams, cat_loss, class_activation_maps, select_cams
from .kd import kd_loss
from .tat import (anchor_points, patch_group, tat_anchor_loss, tat_attention, tat_loss,
                  tat_patch_group_loss)

__all__ = ['at_loss', 'attention_map', 'binarize_cams', 'cat_loss', 'class_activation_maps',
           'kd_loss', 'select_cams', 'anchor_points', 'patch_group', 'tat_anchor_loss',
           'tat_attention', 'tat_loss', 'tat_patch_group_loss']

# DKD, DIST, CWD, FitNet (one file each; kept in a block of their own).
from .cwd import cwd_loss  # noqa: E402
from .dist import dist_loss, pearson_correlation  # noqa: E402
from .dkd import dkd_loss  # noqa: E402
from .fitnet import hint_loss  # noqa: E402

__all__ += ['cwd_loss', 'dist_loss', 'dkd_loss', 'hint_loss', 'pearson_correlation']
