"""smp encoders named by timm (``tu-NAME``) in DeepLabV3+: building, taps, ImageNet weights.

smp 0.6 wraps ``timm.create_model(NAME, features_only=True, output_stride=...)``. DeepLabV3+
needs ``output_stride`` 8 or 16, i.e. a model whose last stages timm can dilate: CNN
families (ResNet, ConvNeXt, EfficientNet, MobileNetV3, RegNet, ...) work; Swin (no
``output_stride``) and plain ViTs (one stride throughout, which smp refuses) do not, and
:func:`build_deeplabv3plus` says so.

Taps: smp's features ``f1..f5`` (strides 2..32, the last ones dilated to
``output_stride``) are ``stage1..stage5``, picked from the encoder's output list (what
the decoder reads, already ``[N, C, H, W]``), with the channels and strides timm's
``feature_info`` states. Models starting at stride 4 (ConvNeXt) have no
``stage1`` (smp passes an empty stride-2 feature); ``tap_notes`` say so.
"""
from __future__ import annotations

from typing import Dict, Tuple

from torch import nn

from kdbench.distill.taps import ItemOf, TapPoint
from kdbench.utils.checkpoint import load_state_strictly
from kdbench.utils.timm_weights import timm_weights_name
from kdbench.utils.weights import load_named_weights

TIMM_PREFIX = 'tu-'
#: smp's encoder features f1..f5 (f0 is the input).
SMP_STAGES = 5


def is_timm_encoder(encoder: str) -> bool:
    return encoder.startswith(TIMM_PREFIX)


def build_deeplabv3plus(encoder: str, num_classes: int, output_stride: int) -> nn.Module:
    """``smp.DeepLabV3Plus`` with random encoder weights; a timm encoder smp cannot use
    with DeepLabV3+ raises a ``ValueError`` naming it and why."""
    import segmentation_models_pytorch as smp
    try:
        return smp.DeepLabV3Plus(encoder_name=encoder, encoder_weights=None,
                                 encoder_output_stride=output_stride, classes=num_classes)
    except (TypeError, ValueError, RuntimeError) as err:
        if not is_timm_encoder(encoder):
            raise
        text = str(err)
        if 'Unknown model' in text:
            why = 'timm has no such model (see timm.list_models())'
        elif 'output_stride' in text:
            why = ('timm cannot dilate its last stages (no output_stride), which DeepLabV3+ '
                   'needs (encoder_output_stride 8 or 16), e.g. Swin')
        elif 'downsampling pattern' in text:
            why = ("its features do not halve in size stage by stage (a ViT keeps one "
                   "stride), which smp's encoders need")
        else:
            raise
        raise ValueError(f"DeepLabV3PlusSegmentor: encoder '{encoder}' cannot be used: {why}. "
                         "Use a timm CNN (e.g. 'tu-resnet18', 'tu-convnext_atto'); "
                         'docs/models.md lists what works.') from err


def timm_encoder_taps(encoder: nn.Module, name: str
                      ) -> Tuple[Dict[str, TapPoint], Dict[str, str]]:
    """``stage1..stage5`` of smp's timm encoder (paths under the DeepLabV3+ network) and
    notes on the stages it lacks (module docstring)."""
    info = encoder.model.feature_info
    entries = list(zip(info.channels(), info.reduction()))[-SMP_STAGES:]
    first = SMP_STAGES + 1 - len(entries)          # smp's index of the first entry
    points = {f'stage{index}': TapPoint('encoder', channels, stride, transform=ItemOf(index))
              for index, (channels, stride) in enumerate(entries, first)}
    notes = {f'stage{index}': (f"timm's '{name}' has no stride-{2 ** index} feature (smp "
                               'passes an empty one); tap a later stage.')
             for index in range(1, first)}
    return points, notes


def timm_imagenet_weights(encoder: str) -> str:
    """The weight name of timm's default ImageNet weights of ``tu-NAME`` (a URL), or a
    ``ValueError`` naming the file to fetch when timm hosts them on the hub only."""
    from timm.models import get_pretrained_cfg
    name = encoder[len(TIMM_PREFIX):]
    cfg = get_pretrained_cfg(name)
    return timm_weights_name(name, cfg.to_dict() if cfg else {}, 'DeepLabV3PlusSegmentor',
                             "encoder_ckpt=PATH instead of encoder_weights='imagenet'")


def load_timm_encoder_weights(encoder: nn.Module, path: str) -> None:
    """Load a timm classification state dict (``path``: a weight name) into smp's timm
    encoder: keys in the feature wrapper's names (``stages.0.x`` -> ``stages_0.x``),
    the classifier head's dropped, every encoder weight required."""
    checkpoint = load_named_weights(path, 'encoder', 'encoder_ckpt')
    state = checkpoint.get('state_dict', checkpoint)
    own = set(encoder.model.state_dict())
    renamed = {}
    for key, value in state.items():
        for candidate in (key, key.replace('.', '_', 1)):
            if candidate in own:
                renamed[f'model.{candidate}'] = value
                break
    load_state_strictly(encoder, renamed, path, 'encoder')
