"""Helpers of the per-method tests (importable from tests/distill/: pytest puts a test
file's folder on ``sys.path``): plain-Python softmax and KL divergence on lists, the
hand-written references the loss tests compare against, and building a registered method."""
import math
from typing import List, Sequence, Tuple

import torch

from kdbench.distill.base import DistillMethod
from kdbench.registry import DISTILL_METHODS


def softmax(values: Sequence[float]) -> List[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    return [e / sum(exps) for e in exps]


def kl(p: Sequence[float], q: Sequence[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


def build_method(kind: str, **kwargs) -> DistillMethod:
    return DISTILL_METHODS.build(dict(type=kind, **kwargs))


def random_logits(seed: int = 0, shape: Tuple[int, ...] = (4, 5)
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """A student's and a teacher's random tensors of ``shape``, from ``seed``."""
    torch.manual_seed(seed)
    return torch.randn(shape), torch.randn(shape)
