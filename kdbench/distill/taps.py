"""Taps: PyTorch forward hooks that capture the outputs of named points of a model.

A task model declares its tap points in a ``tap_points`` table (logical name ->
:class:`TapPoint`). :class:`Taps` registers one forward hook per needed module for the
duration of a ``with`` block and hands the captured tensors to distillation methods.
Architectures are never modified or forked to expose features.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ChannelsLastToFirst:
    """Tap transform of a channels-last map ``[N, H, W, C]`` -> ``[N, C, H, W]`` (e.g. the
    stages of timm's Swin, which compute in NHWC)."""

    def __call__(self, tensor: Tensor) -> Tensor:
        if tensor.dim() != 4:
            raise ValueError(f'ChannelsLastToFirst expects [N, H, W, C], got '
                             f'{tuple(tensor.shape)}.')
        return tensor.permute(0, 3, 1, 2)


@dataclass(frozen=True)
class TokensToMap:
    """Tap transform of a ViT token sequence ``[N, P + H*W, C]`` -> map ``[N, C, H, W]``.

    The first ``prefix_tokens`` tokens (``P``: class and register tokens, timm's
    ``num_prefix_tokens``) are dropped; the patch tokens, in raster order, form the
    ``grid`` ``(H, W)`` of the patch embedding (fixed by the model's ``img_size``).
    """
    prefix_tokens: int
    grid: Tuple[int, int]

    def __call__(self, tensor: Tensor) -> Tensor:
        height, width = self.grid
        if tensor.dim() != 3 or tensor.shape[1] != self.prefix_tokens + height * width:
            raise ValueError(
                f'TokensToMap expects [N, {self.prefix_tokens} + {height}*{width}, C] tokens '
                f'(a {height}x{width} patch grid), got {tuple(tensor.shape)}: the input size '
                "differs from the model's img_size; build the model with img_size set to the "
                'input size.')
        return tensor[:, self.prefix_tokens:].transpose(1, 2).reshape(
            tensor.shape[0], tensor.shape[2], height, width)


@dataclass(frozen=True)
class ItemOf:
    """Tap transform picking tensor ``index`` of a module's list (or tuple) of tensors,
    e.g. smp's encoder features ``[x, f1, ..., f5]``."""
    index: int

    def __call__(self, tensors: Tuple[Tensor, ...]) -> Tensor:
        return tensors[self.index]


@dataclass(frozen=True)
class LayerNormBeforePool:
    """Tap transform giving the map whose channel means are a head's LayerNorm of the
    pooled feature: ``[N, C, H, W]`` -> ``[N, C, H, W]``.

    A head computing ``LN(mean_hw F)`` (LayerNorm over the ``C`` channels: weight ``g``,
    bias ``b``, ``eps``) equals ``mean_hw G`` for

        ``G = g * (F - mean_c F) / sqrt(var_c(mean_hw F) + eps) + b``

    exactly: the centring over channels commutes with the spatial mean, and the scale is
    the pooled feature's (one number per sample). So a classifier ``W`` on ``LN(mean F)``
    has the class activation maps ``W G``. ``g`` and ``b`` are read from the model when
    the taps open (``TapPoint.transform_params``: ``(weight, bias)``, or none for a norm
    without affine parameters); ``to_map`` first brings the captured tensor to
    ``[N, C, H, W]`` (e.g. :class:`TokensToMap`).
    """
    eps: float
    to_map: Optional[Callable[[Tensor], Tensor]] = None

    def __call__(self, tensor: Tensor, weight: Optional[Tensor] = None,
                 bias: Optional[Tensor] = None) -> Tensor:
        feat = tensor if self.to_map is None else self.to_map(tensor)
        if feat.dim() != 4:
            raise ValueError(f'LayerNormBeforePool expects [N, C, H, W], got '
                             f'{tuple(feat.shape)}.')
        scale = torch.rsqrt(feat.mean((2, 3)).var(dim=1, unbiased=False) + self.eps)
        out = (feat - feat.mean(dim=1, keepdim=True)) * scale[:, None, None, None]
        if weight is not None:
            out = out * weight[:, None, None]
        if bias is not None:
            out = out + bias[:, None, None]
        return out


@dataclass(frozen=True)
class TapPoint:
    """Where a logical tap reads from.

    Args:
        module: dotted path of the module inside the task model (``'net.layer3'``).
        channels: channels of the captured tensor (classes for logits and classifiers).
        stride: spatial stride w.r.t. the input, ``None`` for non-spatial outputs.
        param: read this parameter of the module (e.g. ``'weight'`` of the classifier,
            ``[K, C]``) instead of its output; gradients flow as for any tensor.
        of_input: read the module's (first positional) input instead of its output (e.g.
            the map a global pooling module averages).
        transform: applied to the captured tensor when it is read (a picklable callable,
            e.g. :class:`TokensToMap`, :class:`ChannelsLastToFirst`); ``channels`` and
            ``stride`` describe the transformed tensor.
        transform_params: dotted paths of tensors of the model (parameters or buffers,
            e.g. ``'net.head.norm.weight'``) passed to ``transform`` after the captured
            tensor, read when the taps open (gradients flow as for ``param``).
    """
    module: str
    channels: int
    stride: Optional[int] = None
    param: Optional[str] = None
    of_input: bool = False
    transform: Optional[Callable[..., Tensor]] = None
    transform_params: Tuple[str, ...] = ()

    def under(self, prefix: str) -> 'TapPoint':
        """The same point seen from a parent module that holds this one as ``prefix``."""
        return replace(self, module=f'{prefix}.{self.module}',
                       transform_params=tuple(f'{prefix}.{path}'
                                              for path in self.transform_params))


def resolve_taps(model: nn.Module, names: Iterable[str], owner: str) -> Dict[str, TapPoint]:
    """Look up logical tap names in ``model.tap_points``; unknown names raise a clear error.

    Args:
        model: a task model with a ``tap_points`` table.
        names: logical names requested by the methods.
        owner: how the model is called in messages (``'student'``, ``'teacher'``).

    A model may explain taps it does not declare in ``tap_notes`` (name -> why), which the
    error for that name quotes.
    """
    table: Mapping[str, TapPoint] = getattr(model, 'tap_points', None) or {}
    if not table:
        raise TypeError(f'The {owner} model {type(model).__name__} declares no tap_points; '
                        'task models must expose a tap table to be distilled.')
    points = {}
    for name in names:
        if name not in table:
            note = (getattr(model, 'tap_notes', None) or {}).get(name)
            if note:
                raise KeyError(f"The {owner} model {type(model).__name__} has no tap '{name}': "
                               f'{note} Available taps: {", ".join(sorted(table))}.')
            raise KeyError(f"Unknown tap '{name}' for the {owner} model {type(model).__name__}. "
                           f'Available taps: {", ".join(sorted(table))}. Fix the `taps` '
                           'argument of the distillation method in your config.')
        points[name] = table[name]
    modules = dict(model.named_modules())
    for name, point in points.items():
        if point.module not in modules:
            raise KeyError(f"Tap '{name}' of the {owner} model points at module "
                           f"'{point.module}', which does not exist in {type(model).__name__}.")
        if point.param is not None and getattr(modules[point.module], point.param,
                                               None) is None:
            raise KeyError(f"Tap '{name}' of the {owner} model reads '{point.param}' of "
                           f"'{point.module}', which has no such tensor.")
        for path in point.transform_params:
            owner_path, _, attr = path.rpartition('.')
            if owner_path not in modules or not isinstance(
                    getattr(modules[owner_path], attr, None), Tensor):
                raise KeyError(f"Tap '{name}' of the {owner} model transforms its tensor "
                               f"with '{path}', which is not a tensor of "
                               f'{type(model).__name__}.')
    return points


class Taps:
    """Context manager capturing the outputs of tap points during one forward pass.

    Parameter taps (``TapPoint.param``) read the module's tensor when the block starts;
    input taps (``TapPoint.of_input``) the module's first positional input. A tap's
    ``transform`` is applied when the tensor is read, with its ``transform_params`` as
    read when the block starts.

    Captured tensors are stored as they are (no copy). Reading a tensor that was modified
    in place after it was captured (e.g. by a following ``ReLU(inplace=True)``) raises,
    instead of silently distilling a corrupted feature; tap another point in that case.
    The check reads version counters, which inference tensors (``torch.inference_mode``)
    do not have and compiled graphs do not keep: it is skipped for inference tensors and
    with ``check_inplace=False`` (the Distiller checks its first step eagerly instead).

    Example::

        with Taps(model, {'last_stage': point}) as taps:
            model(x)
        feat = taps['last_stage']    # [N, C, H, W]
    """

    def __init__(self, model: nn.Module, points: Mapping[str, TapPoint],
                 check_inplace: bool = True):
        self.model = model
        self.points = dict(points)
        self.check_inplace = check_inplace
        self._captured: Dict[str, tuple] = {}
        self._transform_args: Dict[str, Tuple[Tensor, ...]] = {}
        self._handles: list = []

    def __enter__(self) -> 'Taps':
        # get_submodule walks only the tapped paths (a full named_modules() traversal of a
        # ResNet-101 costs ~0.6 ms per step, which matters at GPU step times).
        module = self.model.get_submodule
        self._captured.clear()
        self._transform_args = {
            name: tuple(self._model_tensor(path) for path in point.transform_params)
            for name, point in self.points.items() if point.transform_params}
        by_module: Dict[Tuple[str, bool], list] = {}
        for name, point in self.points.items():
            if point.param is None:
                by_module.setdefault((point.module, point.of_input), []).append(name)
            else:
                tensor = getattr(module(point.module), point.param)
                self._captured[name] = (tensor, self._version(tensor))
        for (path, of_input), names in by_module.items():
            self._handles.append(module(path).register_forward_hook(self._hook(names,
                                                                               of_input)))
        return self

    def _model_tensor(self, path: str) -> Tensor:
        owner, _, attr = path.rpartition('.')
        return getattr(self.model.get_submodule(owner), attr)

    def _hook(self, names: list, of_input: bool = False):
        def capture(module: nn.Module, args: tuple, output) -> None:
            if of_input:
                output = args[0] if args else None
            if isinstance(output, (list, tuple)) and output and \
                    all(isinstance(t, Tensor) for t in output) and \
                    all(self.points[name].transform is not None for name in names):
                output = tuple(output)       # a transform picks the tensor (e.g. ItemOf)
            elif not isinstance(output, Tensor):
                what = 'whose first input is' if of_input else 'that returns'
                raise TypeError(f'Tap {names} captured a {type(output).__name__}, not a '
                                f'tensor; tap a module {what} a single tensor (or a list '
                                'of tensors, with a transform picking one).')
            version = self._version(output)
            for name in names:
                self._captured[name] = (output, version)
        return capture

    def _version(self, tensor) -> Optional[Any]:
        """The version counter (a tuple of them for a tuple of tensors) to compare on
        reading, ``None`` where none is kept."""
        if isinstance(tensor, tuple):
            versions = tuple(self._version(t) for t in tensor)
            return None if None in versions else versions
        if not self.check_inplace or tensor.is_inference():
            return None
        return tensor._version

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __getitem__(self, name: str) -> Tensor:
        if name not in self._captured:
            raise RuntimeError(f"Tap '{name}' ({self.points[name].module}) captured nothing: "
                               'the module was not called in the forward pass.')
        tensor, version = self._captured[name]
        if version is not None and self._version(tensor) != version:
            raise RuntimeError(f"Tap '{name}' ({self.points[name].module}) was modified in "
                               'place after it was captured (e.g. by an inplace ReLU); tap '
                               'the module that produces the final value instead.')
        transform = self.points[name].transform
        if transform is None:
            return tensor
        return transform(tensor, *self._transform_args.get(name, ()))

    def tensors(self) -> Dict[str, Tensor]:
        """All captured tensors by logical name."""
        return {name: self[name] for name in self.points}
