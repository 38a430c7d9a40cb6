"""DeepLabV3+ (segmentation-models-pytorch) as a kdbench task model with a tap table."""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.distill.taps import TapPoint
from kdbench.registry import MODELS
from kdbench.task import TaskModel, TaskSpec
from kdbench.utils.checkpoint import extract_state_dict, load_state_strictly
from kdbench.utils.weights import load_named_weights

from .timm_encoders import (build_deeplabv3plus, is_timm_encoder, load_timm_encoder_weights,
                            timm_encoder_taps, timm_imagenet_weights)
from .tta import DEFAULT_SCALES, tta_probabilities

#: Module of each encoder stage ``stage1..stage5`` (smp's features f1..f5) per encoder family.
ENCODER_STAGES = {
    'resnet': ('relu', 'layer1', 'layer2', 'layer3', 'layer4'),
    'mobilenet_v2': ('features.1', 'features.3', 'features.6', 'features.13', 'features.18'),
}
#: Classifier weights of ImageNet checkpoints, absent from smp encoders.
_HEAD_KEY = re.compile(r'^(.*\.)?(fc|classifier)\.')
SIZE_DIVISOR = 16


def _encoder_family(name: str) -> str:
    if is_timm_encoder(name):
        return 'timm'
    family = 'resnet' if re.fullmatch(r'resnet\d+', name) else name
    if family not in ENCODER_STAGES:
        raise ValueError(f"Unsupported encoder '{name}' for DeepLabV3Plus; supported: "
                         "resnet18/34/50/101/152, mobilenet_v2 and timm CNNs as 'tu-NAME' "
                         "(e.g. 'tu-convnext_atto', docs/models.md).")
    return family


def segmentation_taps(net: nn.Module, encoder: str, num_classes: int,
                      output_stride: int) -> Tuple[Dict[str, TapPoint], Dict[str, str]]:
    """Tap table of an smp DeepLabV3+ network and notes on the taps it lacks.

    ``stage1..stage5``: the encoder features smp passes on (strides 2, 4, 8, 16,
    ``output_stride``; for ``tu-`` encoders those timm's ``feature_info`` states, see
    :mod:`.timm_encoders`), ``last_stage`` = ``stage5`` (the default for feature methods);
    ``aspp``: the ASPP output (256 ch, stride ``output_stride``); ``decoder``: the fused
    decoder feature (256 ch, stride 4, after ReLU); ``decoder_pre_relu``: the same before
    its ReLU (the official TaT-seg tap); ``logits``: the class maps before upsampling
    (``K`` ch, stride 4), which CAT-KD uses as class attention maps.
    """
    notes: Dict[str, str] = {}
    if is_timm_encoder(encoder):
        points, notes = timm_encoder_taps(net.encoder, encoder)
    else:
        channels = net.encoder.out_channels[1:]
        strides = (2, 4, 8, min(16, output_stride), output_stride)
        points = {f'stage{i}': TapPoint(f'encoder.{m}', c, s) for i, (m, c, s) in enumerate(
            zip(ENCODER_STAGES[_encoder_family(encoder)], channels, strides), 1)}
    points.update(last_stage=points['stage5'],
                  aspp=TapPoint('decoder.aspp', 256, output_stride),
                  decoder=TapPoint('decoder.block2', 256, 4),
                  decoder_pre_relu=TapPoint('decoder.block2.1', 256, 4),
                  logits=TapPoint('segmentation_head.0', num_classes, 4))
    return points, notes


def imagenet_weights(encoder: str) -> str:
    """The weight name of ``encoder_weights='imagenet'``: torchvision's default weights
    of smp's own encoders (``torchvision://resnet18``), timm's of ``tu-`` encoders."""
    if is_timm_encoder(encoder):
        return timm_imagenet_weights(encoder)
    return f'torchvision://{encoder}'


def load_encoder_weights(encoder: nn.Module, path: str) -> None:
    """Load ImageNet weights into an smp encoder from ``path``: a local file,
    ``torchvision://NAME`` or a URL (docs/weights.md).

    Accepts torchvision state dicts (``resnet18-f37072fd.pth``, ``mobilenet_v2-*.pth``)
    and kdbench classifier checkpoints of the same torchvision architecture; their
    classifier (``fc.*`` / ``classifier.*``) is dropped, everything else must match.
    A ``tu-`` encoder reads a timm state dict (:func:`load_timm_encoder_weights`).
    """
    if hasattr(encoder, 'model') and hasattr(encoder.model, 'feature_info'):
        load_timm_encoder_weights(encoder, path)
        return
    checkpoint = load_named_weights(path, 'encoder', 'encoder_ckpt')
    state = checkpoint.get('state_dict', checkpoint)
    state = {k: v for k, v in state.items() if not _HEAD_KEY.match(k)}
    load_state_strictly(encoder, extract_state_dict(state, encoder), path, 'encoder')


@MODELS.register_module()
class DeepLabV3PlusSegmentor(TaskModel):
    """DeepLabV3+ from segmentation-models-pytorch, trained with pixel cross-entropy.

    smp needs H and W divisible by 16: inputs are zero-padded at the bottom/right to the
    next multiple and the logits cropped back, so predictions cover the image exactly.

    Args:
        encoder: ``'resnet18'``, ``'resnet101'``, ``'mobilenet_v2'``, ... (smp names), or a
            timm CNN as ``'tu-NAME'`` (``'tu-convnext_atto'``; docs/models.md).
        num_classes: ``K``.
        output_stride: 16 (paper protocol) or 8.
        encoder_ckpt: optional ImageNet weights of the encoder: a local file,
            ``torchvision://resnet18`` or a URL (see :func:`load_encoder_weights`).
        encoder_weights: ``'imagenet'``: the encoder's default ImageNet weights through
            the same path (:func:`imagenet_weights`; offline, the error names the file to
            copy), instead of ``encoder_ckpt``.
        ignore_index: label excluded from the loss and the metric.
        data_preprocessor: normalisation of the uint8 batch (ImageNet mean/std).
        tta: test-time augmentation of the ``predict`` mode (``tools/test.py --tta``), e.g.
            ``dict(scales=(0.5, ..., 1.75), flip=True)`` (see :func:`tta_probabilities`,
            whose defaults fill missing keys);
            ``None``: one plain forward.

    Modes: ``tensor`` -> logits ``[N, K, H, W]``; ``loss`` -> ``{'loss_seg'}`` (labels
    ``[N, H, W]`` in ``data_samples['label']``); ``predict`` -> one
    ``dict(pred_sem_seg=[H, W], gt_sem_seg=[H, W], num_classes=K)`` per image.
    """

    def __init__(self, encoder: str = 'resnet18', num_classes: int = 21,
                 output_stride: int = 16, encoder_ckpt: Optional[str] = None,
                 encoder_weights: Optional[str] = None, ignore_index: int = 255,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 tta: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        _encoder_family(encoder)
        if encoder_weights not in (None, 'imagenet'):
            raise ValueError(f"encoder_weights must be None or 'imagenet', got "
                             f'{encoder_weights!r}: set model.encoder_ckpt=PATH for a file.')
        if encoder_weights and encoder_ckpt:
            raise ValueError("Give encoder_ckpt=PATH or encoder_weights='imagenet', not both.")
        self.net = build_deeplabv3plus(encoder, num_classes, output_stride)
        if encoder_weights:
            encoder_ckpt = imagenet_weights(encoder)
        if encoder_ckpt:
            load_encoder_weights(self.net.encoder, encoder_ckpt)
        self.num_classes, self.ignore_index = num_classes, ignore_index
        # Defaults filled in, so the model states what its TTA does (tools/test.py logs it).
        self.tta = None if tta is None else dict(dict(scales=DEFAULT_SCALES, flip=True), **tta)
        points, self.tap_notes = segmentation_taps(self.net, encoder, num_classes,
                                                   output_stride)
        self.tap_points = {name: point.under('net') for name, point in points.items()}

    @property
    def task(self) -> TaskSpec:
        """Per-pixel class labels ``[N, H, W]``; ``ignore_index`` pixels are left out."""
        return TaskSpec('segmentation', dense=True, num_classes=self.num_classes,
                        ignore_index=self.ignore_index)

    def logits(self, inputs: Tensor) -> Tensor:
        """``[N, 3, H, W]`` -> ``[N, K, H, W]`` for any H, W (padded to a multiple of 16)."""
        height, width = inputs.shape[-2:]
        pad = (-width % SIZE_DIVISOR, -height % SIZE_DIVISOR)
        if any(pad):
            inputs = F.pad(inputs, (0, pad[0], 0, pad[1]))
        return self.net(inputs)[..., :height, :width]

    def forward(self, inputs: Tensor, data_samples: Optional[Dict[str, Tensor]] = None,
                mode: str = 'tensor'):
        if mode not in ('tensor', 'loss', 'predict'):
            raise ValueError(f"Unknown mode '{mode}'; use 'loss', 'predict' or 'tensor'.")
        if mode == 'predict' and self.tta is not None:
            logits = tta_probabilities(self.logits, inputs, **self.tta)
        else:
            logits = self.logits(inputs)
        if mode == 'tensor':
            return logits
        labels = data_samples['label']
        if labels.shape[-2:] != logits.shape[-2:]:
            raise ValueError(f'Label maps {tuple(labels.shape)} do not match the images '
                             f'{tuple(inputs.shape)}; the pipeline must transform both alike.')
        if mode == 'loss':
            return {'loss_seg': self.pixel_loss(logits, labels)}
        return self.predictions(logits, labels)

    def pixel_loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Cross-entropy ``[N, K, H, W]`` vs ``[N, H, W]``, mean over the pixels not
        labelled ``ignore_index`` (0 for a batch without any)."""
        labels = labels.long()
        try:
            total = F.cross_entropy(logits, labels, ignore_index=self.ignore_index,
                                    reduction='sum')
        except (IndexError, RuntimeError) as err:
            raise ValueError(f'Labels outside [0, {self.num_classes}) other than '
                             f'{self.ignore_index} (found max {int(labels.max())}): the '
                             "model's num_classes must match the dataset's classes.") from err
        return total / (labels != self.ignore_index).sum().clamp(min=1)

    def predictions(self, logits: Tensor, labels: Tensor) -> List[dict]:
        """Per-image outputs for the evaluator."""
        preds = logits.argmax(1)
        return [dict(pred_sem_seg=p, gt_sem_seg=t, num_classes=self.num_classes)
                for p, t in zip(preds.detach(), labels)]
