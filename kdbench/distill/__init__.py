"""Distillation: the Distiller, taps, and one file per registered method."""
from .at import AT
from .base import DistillMethod
from .cat_kd import CATKD
from .cwd import CWD
from .dist import DIST
from .distiller import Distiller
from .dkd import DKD
from .fitnet import FitNet
from .kd import KD
from .taps import TapPoint, Taps, resolve_taps
from .tat import TaT

__all__ = ['AT', 'CATKD', 'CWD', 'DIST', 'DKD', 'DistillMethod', 'Distiller', 'FitNet', 'KD',
           'TaT', 'TapPoint', 'Taps', 'resolve_taps']
