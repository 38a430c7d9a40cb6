"""kdbench: knowledge-distillation benchmark suite on mmengine."""
from kdbench.utils.atomic_io import use_atomic_local_writes
from kdbench.utils.checkpoint import use_trusted_local_loader

__version__ = '0.1.0'

use_trusted_local_loader()
use_atomic_local_writes()
