"""Distillation: the Distiller, taps, and one file per registered method.

The methods are imported in the order they joined kdbench, the order of the method table
(:data:`~kdbench.distill.table.METHOD_ORDER`, read by
:func:`~kdbench.distill.table.registered_methods`: suites, benchmarks, tests); import a new
method last and add it last there.
"""
from .base import DistillMethod
from .distiller import Distiller
from .taps import TapPoint, Taps, resolve_taps
from .kd import KD     # the methods, in table order (see above)
from .at import AT
from .cat_kd import CATKD
from .tat import TaT
from .cwd import CWD
from .dkd import DKD
from .dist import DIST
from .fitnet import FitNet
from .table import MethodEntry, method_by_prefix, registered_methods

__all__ = ['AT', 'CATKD', 'CWD', 'DIST', 'DKD', 'DistillMethod', 'Distiller', 'FitNet', 'KD',
           'MethodEntry', 'TaT', 'TapPoint', 'Taps', 'method_by_prefix', 'registered_methods',
           'resolve_taps']
