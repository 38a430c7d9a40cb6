"""Any timm model as a classification task model (teacher or student), taps from timm.

``TimmClassifier(model_name='convnext_atto', num_classes=10)`` is an
:class:`~tasks.classification.classifier.ImageClassifier` around
``timm.create_model(model_name, num_classes=..., **timm_kwargs)`` whose tap table
(:mod:`tasks.classification.models.timm_taps`) comes from the model's ``feature_info``.
docs/models.md lists the families tested and what applies to each.
"""
from __future__ import annotations

from typing import Any, Optional

from torch import nn

from kdbench.registry import MODELS
from kdbench.utils.checkpoint import extract_state_dict, load_state_strictly
from kdbench.utils.timm_weights import timm_weights_name
from kdbench.utils.weights import load_named_weights

from .classifier import ImageClassifier
from .models.timm_taps import module_path, timm_tap_points


def load_pretrained(net: nn.Module, name: str, source: str) -> None:
    """Load the weight name ``name`` into the timm model ``net`` strictly, except the
    classifier, which keeps its initial weights when its shape differs (another
    ``num_classes`` than the weights')."""
    state = dict(extract_state_dict(load_named_weights(name, 'pretrained network', source),
                                    net))
    prefix = module_path(net, net.get_classifier())
    own = net.state_dict()
    for key in (f'{prefix}.weight', f'{prefix}.bias'):
        if key in own and key in state and state[key].shape != own[key].shape:
            state[key] = own[key]
    load_state_strictly(net, state, name, 'pretrained network')


@MODELS.register_module(name='TimmNet')
def build_timm_net(model_name: str, num_classes: int = 1000, pretrained: bool = False,
                   weights: Optional[str] = None, **timm_kwargs: Any) -> nn.Module:
    """``timm.create_model(model_name, num_classes, **timm_kwargs)`` with random weights,
    then the pretrained ones (``weights``: a weight name, docs/weights.md; or
    ``pretrained=True``: timm's default weights through the same path), with
    ``tap_points`` and ``tap_notes`` set (:func:`timm_tap_points`)."""
    import timm
    if pretrained and weights:
        raise ValueError(f"TimmClassifier '{model_name}': give weights=NAME or "
                         'pretrained=True, not both.')
    try:
        net = timm.create_model(model_name, pretrained=False, num_classes=num_classes,
                                **timm_kwargs)
    except RuntimeError as err:
        if 'Unknown model' not in str(err):
            raise
        raise ValueError(f"TimmClassifier: timm has no model '{model_name}' (set model_name "
                         "to one of timm.list_models(), e.g. 'resnet18').") from err
    if pretrained:
        name = timm_weights_name(model_name, getattr(net, 'pretrained_cfg', None) or {},
                                 'TimmClassifier', 'weights=PATH instead of pretrained=True')
        load_pretrained(net, name, 'pretrained')
    elif weights:
        load_pretrained(net, weights, 'weights')
    net.tap_points, net.tap_notes = timm_tap_points(net, model_name)
    # timm initialises at construction; mmengine's init_weights must not call timm's own
    # init_weights (a ViT's re-draws every weight, pretrained ones included).
    net.is_init = True
    return net


@MODELS.register_module()
class TimmClassifier(ImageClassifier):
    """A timm model as an :class:`ImageClassifier` (three modes, cross-entropy).

    Args:
        model_name: a timm model name (``'resnet10t'``, ``'vit_tiny_patch16_224'``).
        num_classes: classes of the classifier.
        pretrained: load timm's default pretrained weights (their URL, fetched once into
            the torch hub cache; offline the error names the file to copy there). Dropped
            when a trained checkpoint is evaluated (docs/weights.md).
        weights: a weight name (local path, URL, ...) of a timm state dict instead; the
            classifier keeps its initial weights when ``num_classes`` differs.
        classifier_bias, label_smoothing, data_preprocessor, init_cfg: as
            :class:`ImageClassifier`'s.
        **timm_kwargs: passed to ``timm.create_model`` (``img_size=64`` for a ViT on
            64x64 inputs, ``drop_path_rate``, ...).

    Taps: ``stage1..N``, ``last_stage``, ``hint``, ``pre_logits``, ``logits``,
    ``classifier`` and, for pooling + linear heads, ``pre_pool`` (see
    :mod:`tasks.classification.models.timm_taps`; ``tap_notes`` says why one is missing).
    """

    def __init__(self, model_name: str, num_classes: int = 1000, pretrained: bool = False,
                 weights: Optional[str] = None, classifier_bias: bool = True,
                 label_smoothing: float = 0.0, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None, **timm_kwargs: Any):
        net = dict(type='TimmNet', model_name=model_name, num_classes=num_classes,
                   pretrained=pretrained, weights=weights, **timm_kwargs)
        super().__init__(net, label_smoothing=label_smoothing,
                         classifier_bias=classifier_bias,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.model_name = model_name
        self.tap_notes = dict(self.net.tap_notes)
