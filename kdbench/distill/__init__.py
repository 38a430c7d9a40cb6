"""Distillation: the Distiller, taps, and one file per registered method."""
from .at import AT
from .base import DistillMethod
from .cat_kd import CATKD
from .distiller import Distiller
from .kd import KD
from .taps import TapPoint, Taps, resolve_taps
from .tat import TaT

__all__ = ['AT', 'CATKD', 'DistillMethod', 'Distiller', 'KD', 'TaT', 'TapPoint', 'Taps',
           'resolve_taps']
