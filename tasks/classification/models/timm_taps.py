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
``classifier`` (its weight ``[K, C]``). ``pre_pool`` (the map the global average pooling
reads, for CAT-KD's class activation maps) exists only where the head is pooling + linear
classifier, i.e. the logits are the classifier applied to the channel means of
``pre_pool``; otherwise ``tap_notes['pre_pool']`` says why it is missing.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from torch import nn

from kdbench.distill.taps import ChannelsLastToFirst, TapPoint, TokensToMap

#: Stages a ViT-family model's blocks are split into.
VIT_STAGES = 4


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
    without a module, e.g. a ViT's class token)."""
    head = getattr(net, 'head', None)
    for owner in (net, head):
        pool = getattr(owner, 'global_pool', None) if isinstance(owner, nn.Module) else None
        if isinstance(pool, nn.Module):
            return pool, head if owner is head else None
    return None, head


def _pre_pool(net: nn.Module, classifier: nn.Module, last: TapPoint
              ) -> Tuple[Optional[TapPoint], str]:
    """The ``pre_pool`` point where the head is average pooling + linear, else a reason."""
    from timm.layers import NormMlpClassifierHead, SelectAdaptivePool2d
    pool, head = _global_pool(net)
    if pool is None:
        return None, ('its head pools without a pooling module (a ViT reads the class token '
                      'or averages tokens before a norm), so no map sums to its logits.')
    if not isinstance(pool, SelectAdaptivePool2d) or pool.pool_type != 'avg':
        return None, f'its global pooling is not an average ({pool}).'
    if isinstance(head, NormMlpClassifierHead):
        return None, ('its head normalises (and may transform) the pooled feature before the '
                      'classifier, so class activation maps of the pooled map would not sum '
                      'to its logits.')
    channels = int(net.num_features)
    if getattr(classifier, 'in_features', None) != channels:
        return None, (f'a layer between its {channels}-channel pooled map and the classifier '
                      f'({getattr(classifier, "in_features", "?")} inputs) transforms it.')
    path = module_path(net, pool)
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
    return points, notes
