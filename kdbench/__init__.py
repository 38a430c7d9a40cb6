"""kdbench: knowledge-distillation benchmark suite on mmengine.

Importing kdbench changes nothing outside it (torch's loading defaults, mmengine's file
backends and checkpoint loaders stay as they are): trust in checkpoint files and atomic
checkpoint writes apply only where kdbench loads or writes them (docs/weights.md).
"""
__version__ = '0.1.0'
