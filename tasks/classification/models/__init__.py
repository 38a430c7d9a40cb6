"""Classification networks; each exposes a ``tap_points`` table."""
from . import cifar_resnet, torchvision_resnet  # noqa: F401  (registration)
from .cifar_resnet import CifarResNet

__all__ = ['CifarResNet']
