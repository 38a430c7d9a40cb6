"""Classification networks; each exposes a ``tap_points`` table."""
from . import cifar_resnet, torchvision_resnet  # noqa: F401  (registration)
from . import wrn  # noqa: F401
from . import vgg  # noqa: F401
from . import mobilenetv2_cifar  # noqa: F401
from . import shufflenetv1  # noqa: F401
from . import shufflenetv2  # noqa: F401
from . import resnet_cifar_bottleneck  # noqa: F401
from . import mobilenetv1  # noqa: F401
from .cifar_resnet import CifarResNet

__all__ = ['CifarResNet']
