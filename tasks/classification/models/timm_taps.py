"""The tap table of a timm classification model, derived from timm's own description.

Stages come from ``model.feature_info`` (module names, channels, reductions):

* CNN families (ResNet, ConvNeXt, EfficientNet, MobileNetV3, RegNet, ...): the entries
  of stride 4 and more are ``stage1..N`` (the stride-2 stem entry is left out), the last
  one is ``last_stage``; NHWC models (Swin) are read as ``[N, C, H, W]``
  (:class:`~kdbench.distill.taps.ChannelsLastToFirst`).
* ViT-family models (a ``patch_embed`` and ``num_prefix_tokens``; every block has the
  patch stride): the outputs of the last block of each quarter of the depth are
  ``stage1..4``, read as maps ``[N, C, H, W]`` on the patch grid: class and register
  tokens (the first ``num_prefix_tokens``) are dropped
  (:class:`~kdbench.distill.taps.TokensToMap`). The grid is fixed by ``img_size``, so the
  inputs must have that size (``dynamic_img_size`` models are refused).

Every model also has ``hint`` (``stage2``, FitNet's default), ``pre_logits`` (the
classifier's input ``[N, C]``), ``logits`` (the classifier's output ``[N, K]``) and
``classifier`` (its weight ``[K, C]``).

``pre_pool`` (CAT-KD's class activation maps are the classifier applied to it) is a map
``[N, C, H, W]`` whose channel means are the classifier's input, so the CAMs average to
the logits less the classifier's bias:

* pooling + linear heads: the map the global average pooling reads;
* a LayerNorm over channels between the pooling and the classifier (ConvNeXt's head,
  a ViT's ``fc_norm`` with ``global_pool='avg'``): that map with the norm moved before
  the pooling, exactly (:class:`~kdbench.distill.taps.LayerNormBeforePool`: centred per
  position, scaled by the pooled feature's standard deviation);
* ViTs averaging their patch tokens (``global_pool='avg'``, no ``fc_norm``): the patch
  tokens after the final norm, exactly;
* ViTs reading the class token (``global_pool='token'``, timm's default for ViT and
  DeiT): the patch tokens after the final norm, an **approximation** (the class token is
  not their mean; ``tap_notes['pre_pool']`` says so).

Heads that transform the pooled feature otherwise (MobileNetV3's 1x1 conv and
activation, an MLP head, attention pooling) have none; ``tap_notes['pre_pool']`` says
why.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from torch import nn

from kdbench.distill.taps import (ChannelsLastToFirst, LayerNormBeforePool, TapPoint,
                                  TokensToMap)

#: Stages a ViT-family model's blocks are split into.
VIT_STAGES = 4

#: The note on the ``pre_pool`` tap of a class-token ViT.
APPROXIMATE_CAMS = ('its pre_pool is an approximation: the logits read the class token, '
                    'not the mean of these patch tokens (after the final norm), so their '
                    'class activation maps do not sum to the logits; build it with '
                    "global_pool='avg' for exact ones.")


def module_path(net: nn.Module, module: nn.Module) -> str:
    """The dotted path of ``module`` inside ``net``."""
    for name, candidate in net.named_modules():
        if candidate is module:
            return name
    raise ValueError(f'{type(module).__name__} is not a submodule of {type(net).__name__}.')


def _is_vit(net: nn.Module) -> bool:
    return hasattr(net, 'patch_embed') and hasattr(net, 'num_prefix_tokens') and \
        hasattr(net.patch_embed, 'grid_size')


def _layout(net: nn.Module) -> Optional[ChannelsLastToFirst]:
    """The transform of the model's maps to ``[N, C, H, W]`` (timm's ``output_fmt``)."""
    return ChannelsLastToFirst() if getattr(net, 'output_fmt', 'NCHW') == 'NHWC' else None


def _stage_points(net: nn.Module, model_name: str) -> List[TapPoint]:
    info = [(f['module'], f['num_chs'], f['reduction']) for f in net.feature_info]
    if _is_vit(net):
        if getattr(net, 'dynamic_img_size', False):
            raise ValueError(f"TimmClassifier '{model_name}': dynamic_img_size=True gives "
                             'token grids of varying size, which the tap table cannot map; '
                             'build it without dynamic_img_size (img_size = the input size).')
        transform = TokensToMap(int(net.num_prefix_tokens), tuple(net.patch_embed.grid_size))
        depth = len(info)
        picked = sorted({max(round(depth * (i + 1) / VIT_STAGES) - 1, 0)
                         for i in range(VIT_STAGES)})
        return [TapPoint(info[i][0], info[i][1], info[i][2], transform=transform)
                for i in picked]
    strided = [entry for entry in info if entry[2] >= 4] or info
    return [TapPoint(module, channels, stride, transform=_layout(net))
            for module, channels, stride in strided]


def _global_pool(net: nn.Module) -> Tuple[Optional[nn.Module], Optional[nn.Module]]:
    """The model's global pooling module and its head (``None`` when the head pools
    without a module, e.g. a ViT)."""
    head = getattr(net, 'head', None)
    for owner in (net, head):
        pool = getattr(owner, 'global_pool', None) if isinstance(owner, nn.Module) else None
        if isinstance(pool, nn.Module):
            return pool, head if owner is head else None
    return None, head


def _channel_layer_norm(norm: nn.Module, channels: int) -> bool:
    """Whether ``norm`` is a LayerNorm over exactly the ``channels`` (timm's LayerNorm2d
    on a pooled ``[N, C, 1, 1]``, nn.LayerNorm on ``[N, C]``)."""
    return isinstance(norm, nn.LayerNorm) and tuple(norm.normalized_shape) == (channels,)


def _norm_before_pool(net: nn.Module, norm: nn.Module, to_map=None) -> dict:
    """TapPoint fields moving the LayerNorm ``norm`` of the pooled feature before the
    pooling (:class:`LayerNormBeforePool`, exact)."""
    params = tuple(f'{module_path(net, norm)}.{name}' for name in ('weight', 'bias')
                   if getattr(norm, name, None) is not None)
    return dict(transform=LayerNormBeforePool(float(norm.eps), to_map),
                transform_params=params)


def _vit_pre_pool(net: nn.Module, last: TapPoint) -> Tuple[Optional[TapPoint], str]:
    """A ViT's ``pre_pool``: the patch tokens after the final norm as a map (exact for
    average pooling; for class-token pooling an approximation, see the module docstring)."""
    channels = int(net.embed_dim)
    pool = getattr(net, 'global_pool', '')
    if getattr(net, 'attn_pool', None) is not None or pool not in ('avg', 'token') or \
            getattr(net, 'pool_include_prefix', False):
        return None, (f"its head pools the tokens with '{pool}'"
                      + (' (attention pooling)' if getattr(net, 'attn_pool', None) else '')
                      + "; only 'avg' over the patch tokens and 'token' are mapped.")
    fc_norm = net.fc_norm
    if isinstance(fc_norm, nn.Identity):
        fields = dict(transform=last.transform)
    elif pool == 'avg' and _channel_layer_norm(fc_norm, channels):
        fields = _norm_before_pool(net, fc_norm, last.transform)
    else:
        return None, (f'its head normalises the pooled token with a {type(fc_norm).__name__}'
                      ', which cannot be moved before the pooling.')
    point = TapPoint(module_path(net, net.norm), channels, last.stride, **fields)
    if pool == 'token':
        return point, APPROXIMATE_CAMS
    return point, ''


def _pre_pool(net: nn.Module, classifier: nn.Module, last: TapPoint
              ) -> Tuple[Optional[TapPoint], str]:
    """The ``pre_pool`` point where the logits are the classifier on the channel means of
    a map (module docstring), else a reason."""
    from timm.layers import NormMlpClassifierHead, SelectAdaptivePool2d
    if _is_vit(net):
        return _vit_pre_pool(net, last)
    pool, head = _global_pool(net)
    if pool is None:
        return None, 'its head pools without a pooling module.'
    if not isinstance(pool, SelectAdaptivePool2d) or pool.pool_type != 'avg':
        return None, f'its global pooling is not an average ({pool}).'
    channels = int(net.num_features)
    path = module_path(net, pool)
    if isinstance(head, NormMlpClassifierHead) and not isinstance(head.norm, nn.Identity):
        if not isinstance(head.pre_logits, nn.Identity) or \
                not _channel_layer_norm(head.norm, channels):
            return None, ('its head transforms the pooled feature (an MLP, or a norm other '
                          'than a LayerNorm over channels) before the classifier.')
        return TapPoint(path, channels, last.stride, of_input=True,
                        **_norm_before_pool(net, head.norm, _layout(net))), ''
    if getattr(classifier, 'in_features', None) != channels:
        return None, (f'a layer between its {channels}-channel pooled map and the classifier '
                      f'({getattr(classifier, "in_features", "?")} inputs) transforms it.')
    return TapPoint(path, channels, last.stride, of_input=True, transform=_layout(net)), ''


def timm_tap_points(net: nn.Module, model_name: str
                    ) -> Tuple[Dict[str, TapPoint], Dict[str, str]]:
    """The tap table of a timm classification model (module docstring) and the notes on
    the taps it lacks (``{'pre_pool': why}``)."""
    classifier = net.get_classifier()
    if not isinstance(classifier, nn.Linear):
        raise ValueError(f"TimmClassifier '{model_name}': its classifier is a "
                         f'{type(classifier).__name__}, not a linear layer; build it with '
                         'num_classes > 0.')
    stages = _stage_points(net, model_name)
    fc = module_path(net, classifier)
    points = {f'stage{i}': point for i, point in enumerate(stages, 1)}
    points.update(last_stage=stages[-1], hint=stages[1] if len(stages) > 1 else stages[0],
                  pre_logits=TapPoint(fc, classifier.in_features, of_input=True),
                  logits=TapPoint(fc, classifier.out_features),
                  classifier=TapPoint(fc, classifier.out_features, param='weight'))
    pre_pool, why = _pre_pool(net, classifier, stages[-1])
    notes = {}
    if pre_pool is None:
        notes['pre_pool'] = (f"'{model_name}' declares no pre_pool (the map before global "
                             f'average pooling, which CAT-KD reads): {why}')
    else:
        points['pre_pool'] = pre_pool
        if why:
            notes['pre_pool'] = f"'{model_name}': {why}"
    return points, notes
