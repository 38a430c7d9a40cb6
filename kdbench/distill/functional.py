"""Pure loss functions of every distillation method (the public functional API)."""
from .at import at_loss, attention_map
from .kd import kd_loss

__all__ = ['at_loss', 'attention_map', 'kd_loss']
