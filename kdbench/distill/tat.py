"""TaT: Lin et al., "Knowledge Distillation via the Target-aware Transformer", CVPR 2022.

The student feature ``F_s`` is reconfigured by an attention whose keys come from the
teacher feature ``F_t``, and the result regresses ``F_t``::

    q = theta(F_s),  k = phi(F_t),  v = gamma(F_s)          all [N, C_t, H, W]
    A = softmax(q k^T)            q, k, v flattened to [N, HW, C_t]; A: [N, HW, HW],
                                  softmax over the key positions (last dim), no scaling
    L_TaT = mean((A v - F_t)^2)   A v reshaped back to [N, C_t, H, W]

Symbols -> arguments: ``theta``/``phi``/``gamma`` name the connectors (``'identity'``,
``'conv1x1_bn'``, ``'conv3x3_bn'``: conv without bias + BatchNorm; ``theta`` and ``gamma``
map the student's ``C_s`` channels to the teacher's ``C_t``, ``phi`` maps ``C_t -> C_t``);
``F_s``/``F_t`` are the tap ``taps[0]`` of the student/teacher. The names follow the
official code; the paper's Eq. 7 ``sigma(gamma(f^s) theta(f^t)^T) phi(f^s)`` names the
same three maps differently: paper gamma = kdbench ``theta`` (query, student), paper
theta = kdbench ``phi`` (key, teacher), paper phi = kdbench ``gamma`` (value, student).
So the paper's CIFAR-100 finding "theta = identity works best" (Sec. 4.3, Table 6)
concerns the teacher-side map, kdbench's ``phi``.

Modes:

* ``'global'`` (classification, Eq. 9): one attention over all ``H*W`` positions,
  ``loss = loss_weight * L_TaT`` (``epsilon`` of Eq. 9). The task loss weight ``alpha``
  is the Distiller's ``student_loss_weight``, the logit-KD weight ``beta`` a separate
  ``KD`` method. Defaults (official ImageNet code): ``phi='identity'``,
  ``theta=gamma='conv3x3_bn'``, ``loss_weight=0.2`` (with CE 0.1). Memory: written out,
  the attention is an ``(H*W)^2`` matrix per image (7x7 -> 49^2; a 129x129 map -> 16641^2 floats,
  1.1 GB fp32 per image); kdbench computes it with the memory-efficient kernel
  (:func:`attention_flat`), whose memory grows with ``H*W``, so global mode also runs
  on segmentation maps (``configs/seg/tat_global_*``); its time still grows with
  ``(H*W)^2``.
* ``'hierarchical'`` (segmentation, Eq. 10):
  ``loss = loss_weight * (delta * L_TaT^P + zeta * L_TaT^A)`` on the same q, k, v, F_t.
  ``L_TaT^P`` (:func:`tat_patch_group_loss`) cuts each map into ``patches = (n, m)``
  non-overlapping patches, concatenates them channel-wise and runs the attention inside
  each of ``groups`` channel groups; ``L_TaT^A`` (:func:`tat_anchor_loss`) average-pools
  the four maps with ``kernel_size`` (= stride) and runs the global attention on the
  pooled "anchor" maps. Give either ``kernel_size`` or ``anchors = (a_h, a_w)``, the
  number of anchor cells per side: the kernel is then ``(H // a_h, W // a_w)`` of the
  teacher map at run time (the official scripts' "anchors 32" on a 129x129 map: kernel
  4, 32x32 anchors). Defaults (official segmentation code): ``theta=phi=gamma=
  'conv1x1_bn'``, ``loss_weight=1``, and the official VOC ResNet-18 script's ``delta=0.1,
  zeta=0.04, patches=(16, 16), groups=64, anchors=(32, 32)`` (docs/reference.md §4 lists the
  other scripts; set them per config).

Student and teacher maps of different ``H, W``: the student embeddings ``q`` and ``v`` are
resized bilinearly (``align_corners=False``) to the teacher's ``H, W`` (the target never
changes). The teacher feature is detached; ``phi`` still learns (its parameters get
gradients through the keys). The attention (matmuls and softmax) runs in fp32 with
autocast disabled: the logits ``q k^T`` sum ``C_t`` products and can overflow fp16.

Differences from the paper (kdbench follows the official code) and from the official code:

* Paper vs code: no ``1/sqrt(d)`` scaling and the softmax runs over the key positions as
  in the code; the paper's Eq. 5 writes the transposed product. Eq. 7 makes all three
  maps Conv3x3+BN; the official classification code keeps ``phi`` the identity (the
  paper's "semi-parametric" variant, Table 4).
* Paper vs code: ImageNet lr 1.6e-4 at batch 2048 (Sec. 4.2) vs the official config's
  1.6e-3 and wd 5e-4 (the configs follow the code).
* The official segmentation code loops over the images of the batch (the connectors'
  BatchNorm sees one image at a time) and keeps the teacher in train mode. kdbench runs
  the batch at once (BatchNorm statistics over the batch; the losses are means over all
  images and elements) and keeps the teacher in eval mode (the Distiller's rule).
* The official segmentation scripts tap the 256-channel decoder feature; the paper
  distils the last backbone stage, which is kdbench's default tap (``'last_stage'``).
* kdbench additions: resizing the student embeddings when H, W differ, fp32 attention
  under autocast, checks with clear errors on shapes, groups, patches and anchors.

Implementation: the functions of this module (:func:`tat_loss`,
:func:`tat_patch_group_loss`, :func:`tat_anchor_loss` and the maps they build on) are the
reference; their attention is :func:`~kdbench.distill.attention.attention_flat` (the
explicit product, or ``scaled_dot_product_attention`` where the matrix would be large;
``efficient`` forces either). :class:`TaT` runs them through one rule,
:func:`~kdbench.distill.tat_fast.select_path`: with ``implementation='auto'`` (default),
the hierarchical loss on CPU tensors takes one of the CPU paths of
:mod:`kdbench.distill.tat_fast` (image chunks with batch-wide BatchNorm; patch groups cut
before per-position connectors), which compute the same values in another memory layout;
global mode, non-CPU devices and ``implementation='reference'`` run the reference
functions on the whole batch (``docs/tat.md``).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.registry import DISTILL_METHODS

from .attention import attention_flat
from .base import DistillMethod
from .taps import TapPoint
from .tat_fast import check_implementation, chunked_loss, select_path, tiled_losses

MODES = ('global', 'hierarchical')
CONNECTORS = ('identity', 'conv1x1_bn', 'conv3x3_bn')
#: Per-mode defaults of the arguments left ``None`` (official classification / seg code).
MODE_DEFAULTS = {
    'global': dict(theta='conv3x3_bn', phi='identity', gamma='conv3x3_bn', loss_weight=0.2),
    'hierarchical': dict(theta='conv1x1_bn', phi='conv1x1_bn', gamma='conv1x1_bn',
                         loss_weight=1.0, delta=0.1, zeta=0.04, patches=(16, 16),
                         groups=64),
}
DEFAULT_ANCHORS = (32, 32)

Pair = Union[int, Tuple[int, int]]


def _pair(value: Pair, what: str) -> Tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f'TaT: {what} must be a positive int or a pair of them, got {value}.')
    return pair


def tat_attention(query: Tensor, key: Tensor, value: Tensor,
                  efficient: Optional[bool] = None) -> Tensor:
    """Target-aware attention ``softmax(q k^T) v`` over the spatial positions.

    Args:
        query: ``[N, C, Hq, Wq]``.
        key: ``[N, C, Hk, Wk]`` (same ``N, C`` as the query).
        value: ``[N, Cv, Hk, Wk]`` (same positions as the key).
        efficient: ``True``: ``scaled_dot_product_attention`` (no ``(HqWq x HkWk)``
            matrix kept for the backward); ``False``: the explicit product; ``None``
            (default): the kernel where one image's matrix has more than
            ``KERNEL_MIN_ENTRIES`` entries (see :func:`attention_flat`). Same values and
            gradients up to rounding.

    Returns:
        ``[N, Cv, Hq, Wq]`` in fp32 (fp64 for fp64 inputs): each query position is the
        softmax-weighted (over the key positions, no ``1/sqrt(C)`` scaling) sum of the
        values. With the usual equal shapes: ``[N, C, H, W]`` x3 -> ``[N, C, H, W]``.
    """
    _check_attention_shapes(query, key, value)
    n, _, h, w = query.shape
    out = attention_flat(query, key, value, efficient)      # [N, Cv, HqWq]
    return out.reshape(n, value.shape[1], h, w)


def _check_attention_shapes(query: Tensor, key: Tensor, value: Tensor) -> None:
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4 or \
            query.shape[:2] != key.shape[:2] or value.shape[0] != key.shape[0] or \
            value.shape[2:] != key.shape[2:]:
        raise ValueError('tat_attention expects query [N, C, Hq, Wq], key [N, C, Hk, Wk] and '
                         f'value [N, Cv, Hk, Wk], got {tuple(query.shape)}, '
                         f'{tuple(key.shape)} and {tuple(value.shape)}.')


def tat_loss(query: Tensor, key: Tensor, value: Tensor, target: Tensor,
             efficient: Optional[bool] = None) -> Tensor:
    """Mean squared error between :func:`tat_attention` ``(q, k, v)`` and ``target``.

    Args:
        query, key, value: ``[N, C, H, W]`` (see :func:`tat_attention`).
        target: ``[N, C, H, W]``, the shape of the attention output (the teacher feature).
        efficient: see :func:`attention_flat`.

    Returns:
        Scalar fp32 loss (fp64 for fp64 inputs; mean over all elements).
    """
    _check_attention_shapes(query, key, value)
    out_shape = (query.shape[0], value.shape[1], *query.shape[2:])
    if tuple(target.shape) != out_shape:
        raise ValueError(f'tat_loss: the attention output {out_shape} and the target '
                         f'{tuple(target.shape)} must have the same shape.')
    out = attention_flat(query, key, value, efficient)     # [N, C, HW]
    return F.mse_loss(out, target.to(out.dtype).flatten(2))


def patch_group(x: Tensor, patches: Pair, groups: int) -> Tensor:
    """Patch-group reorganisation of a feature map.

    The map is cut into ``n x m`` non-overlapping patches of ``(H // n) x (W // m)``
    (remainder rows/columns at the bottom/right are dropped), the patches are concatenated
    channel-wise in raster order (channel ``patch_index * C + c`` with ``patch_index =
    i * m + j`` for patch row ``i``, column ``j``) and the channels are split into
    ``groups`` consecutive groups of ``n * m / groups`` patches each.

    Difference from the official code: it fixes the patch size ``H // n`` and takes as many
    patches as fit, ``H // (H // n)`` per side, which is more than ``n`` when ``H // (H // n)
    != n`` (e.g. ``H=10, n=4``: 5 patches of 2 rows); kdbench keeps exactly ``n`` and drops
    the remainder. No shipped config hits this: their maps split exactly (128 into 16 or 32,
    32 into 4 or 8, 16 into 2), and the official 129-row map gives ``n`` too for 16 and 32.

    Args:
        x: ``[N, C, H, W]``.
        patches: ``(n, m)`` patches per column and row (an int means ``n = m``).
        groups: number of groups ``g``; ``n * m`` must be divisible by it.

    Returns:
        ``[N, g, C * n * m // g, H // n, W // m]``.
    """
    if x.dim() != 4:
        raise ValueError(f'patch_group expects [N, C, H, W], got {tuple(x.shape)}.')
    n, m = _pair(patches, 'patches')
    if not isinstance(groups, int) or groups < 1 or (n * m) % groups:
        raise ValueError(f'patch_group: n*m = {n}*{m} = {n * m} patches cannot be split into '
                         f'groups={groups}; groups must divide n*m.')
    tiles = split_patches(x, (n, m))                          # [N*n*m, C, h, w]
    return tiles.reshape(x.shape[0], groups, n * m * x.shape[1] // groups, *tiles.shape[2:])


def split_patches(x: Tensor, patches: Pair) -> Tensor:
    """The ``n x m`` patches of ``(H // n) x (W // m)`` of each map as a batch, in raster
    order (image-major; remainder rows/columns dropped): ``[N, C, H, W]`` ->
    ``[N * n * m, C, H // n, W // m]``. :func:`patch_group` is a view of it."""
    n, m = _pair(patches, 'patches')
    batch, channels, height, width = x.shape
    h, w = height // n, width // m
    if h == 0 or w == 0:
        raise ValueError(f'patch_group: patches=({n}, {m}) is larger than the {height}x{width} '
                         'feature map; use at most one patch per row/column of the map.')
    if (n * h, m * w) != (height, width):
        # Drop the remainder. Only then: a full-size slice would still cost a zero-filled
        # gradient buffer and a copy in the backward pass.
        x = x[:, :, :n * h, :m * w]
    x = x.reshape(batch, channels, n, h, m, w)
    x = x.permute(0, 2, 4, 1, 3, 5)                        # [N, n, m, C, h, w]
    return x.reshape(batch * n * m, channels, h, w)


def anchor_points(x: Tensor, kernel_size: Pair) -> Tensor:
    """Anchor map: average pooling with ``kernel = stride = kernel_size`` (remainder dropped).

    ``[N, C, H, W]`` -> ``[N, C, H // kh, W // kw]``.
    """
    if x.dim() != 4:
        raise ValueError(f'anchor_points expects [N, C, H, W], got {tuple(x.shape)}.')
    kernel = _pair(kernel_size, 'kernel_size')
    if kernel[0] > x.shape[2] or kernel[1] > x.shape[3]:
        raise ValueError(f'anchor_points: kernel_size {kernel} is larger than the '
                         f'{x.shape[2]}x{x.shape[3]} feature map.')
    return F.avg_pool2d(x, kernel, stride=kernel)


def tat_patch_group_loss(query: Tensor, key: Tensor, value: Tensor, target: Tensor,
                         patches: Pair, groups: int) -> Tensor:
    """Patch-group TaT loss ``L_TaT^P``: :func:`tat_loss` inside each group.

    All four ``[N, C, H, W]`` maps are reorganised by :func:`patch_group` to
    ``[N, g, C*n*m/g, h, w]`` and the groups are folded into the batch
    (``[N*g, C*n*m/g, h, w]``), so each group is one attention over its ``h*w``
    positions. Returns the mean over all groups and elements (fp32 scalar).

    The attention is the explicit product (``efficient=False`` of :func:`tat_loss`): a
    group's attention matrix is small (``(h*w)^2``, 64^2 for the official 8x8 patches).
    """
    def fold(x: Tensor) -> Tensor:
        grouped = patch_group(x, patches, groups)
        return grouped.reshape(-1, *grouped.shape[2:])
    return tat_loss(fold(query), fold(key), fold(value), fold(target), efficient=False)


def tat_anchor_loss(query: Tensor, key: Tensor, value: Tensor, target: Tensor,
                    kernel_size: Pair, efficient: Optional[bool] = None) -> Tensor:
    """Anchor-point TaT loss ``L_TaT^A``: :func:`tat_loss` on the :func:`anchor_points` of
    the four ``[N, C, H, W]`` maps (pooled with ``kernel_size``); fp32 scalar."""
    return tat_loss(*(anchor_points(x, kernel_size) for x in (query, key, value, target)),
                    efficient=efficient)


def _connector(kind: str, in_channels: int, out_channels: int, role: str) -> nn.Module:
    if kind == 'identity':
        if in_channels != out_channels:
            raise ValueError(f"TaT: {role}='identity' cannot map {in_channels} channels to "
                             f'{out_channels}; the student tap has {in_channels} channels '
                             f'and the teacher tap {out_channels}. Use conv1x1_bn or '
                             'conv3x3_bn to align them.')
        return nn.Identity()
    size = 1 if kind == 'conv1x1_bn' else 3
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, size, padding=size // 2, bias=False),
        nn.BatchNorm2d(out_channels))


@DISTILL_METHODS.register_module()
class TaT(DistillMethod):
    """Target-aware transformer distillation on one feature tap (see the module docstring).

    Arguments left ``None`` take the defaults of ``mode`` (:data:`MODE_DEFAULTS`).

    Args:
        mode: ``'global'`` (classification) or ``'hierarchical'`` (segmentation).
        theta: query connector on the student feature (``C_s -> C_t``).
        phi: key connector on the teacher feature (``C_t -> C_t``).
        gamma: value connector on the student feature (``C_s -> C_t``).
        loss_weight: overall factor (``epsilon`` of Eq. 9 in global mode).
        delta: weight of the patch-group loss (hierarchical).
        zeta: weight of the anchor-point loss (hierarchical).
        patches: ``(n, m)`` patches per side for the patch-group loss (hierarchical).
        groups: channel groups of the patch-group loss (hierarchical).
        kernel_size: anchor pooling kernel (= stride) (hierarchical).
        anchors: ``(a_h, a_w)`` anchor cells per side; the kernel becomes
            ``(H // a_h, W // a_w)`` of the teacher map (hierarchical; exclusive with
            ``kernel_size``; ``(32, 32)`` when neither is given).
        taps: one feature tap read from both models.
        efficient: the global and anchor attentions through the memory-efficient kernel
            (``True``), the explicit ``softmax(q k^T) v`` (``False``), or the kernel for
            large matrices only (``None``, default; :func:`attention_flat`). Same
            values; the choice is for comparisons, e.g. ``tools/bench_tat.py``.
        implementation: ``'auto'`` (default): the path of
            :func:`~kdbench.distill.tat_fast.select_path` (the CPU paths of
            :mod:`~kdbench.distill.tat_fast` for the hierarchical loss on CPU tensors, the
            reference functions otherwise); ``'reference'``: always the reference functions
            of this module on the whole batch. Same values up to rounding.

    Connectors are built by :meth:`bind` from the taps' channels; their parameters are
    ``theta.*``, ``phi.*``, ``gamma.*`` of this module (``methods.<name>.*`` in the
    Distiller's checkpoint).
    """

    def __init__(self, mode: str = 'global', theta: Optional[str] = None,
                 phi: Optional[str] = None, gamma: Optional[str] = None,
                 loss_weight: Optional[float] = None, delta: Optional[float] = None,
                 zeta: Optional[float] = None, patches: Optional[Pair] = None,
                 groups: Optional[int] = None, kernel_size: Optional[Pair] = None,
                 anchors: Optional[Pair] = None, taps: Sequence[str] = ('last_stage',),
                 efficient: Optional[bool] = None, implementation: str = 'auto'):
        if mode not in MODES:
            raise ValueError(f"TaT mode must be one of {MODES}, got '{mode}'.")
        check_implementation(implementation)
        defaults = MODE_DEFAULTS[mode]
        if mode == 'global':
            misplaced = [name for name, value in (
                ('delta', delta), ('zeta', zeta), ('patches', patches), ('groups', groups),
                ('kernel_size', kernel_size), ('anchors', anchors)) if value is not None]
            if misplaced:
                raise ValueError(f"TaT: {misplaced} only apply to mode='hierarchical'.")

        def pick(name: str, value: Any) -> Any:
            return defaults[name] if value is None else value

        super().__init__(taps, pick('loss_weight', loss_weight))
        if len(self.taps) != 1:
            raise ValueError(f'TaT reads one feature tap from both models, got taps={self.taps}.')
        self.mode = mode
        self.efficient = efficient
        self.implementation = implementation
        self.kinds = {'theta': pick('theta', theta), 'phi': pick('phi', phi),
                      'gamma': pick('gamma', gamma)}
        for role, kind in self.kinds.items():
            if kind not in CONNECTORS:
                raise ValueError(f"TaT {role} must be one of {CONNECTORS}, got '{kind}'.")
        self.theta = self.phi = self.gamma = None
        self.patches = self.groups = None
        if mode == 'hierarchical':
            if kernel_size is not None and anchors is not None:
                raise ValueError('TaT: give either kernel_size or anchors, not both.')
            self.delta, self.zeta = float(pick('delta', delta)), float(pick('zeta', zeta))
            self.patches = _pair(pick('patches', patches), 'patches')
            self.groups = int(pick('groups', groups))
            if (self.patches[0] * self.patches[1]) % self.groups:
                raise ValueError(f'TaT: groups={self.groups} must divide the '
                                 f'{self.patches[0]}x{self.patches[1]} patches.')
            self.kernel_size = None if kernel_size is None else _pair(kernel_size,
                                                                      'kernel_size')
            self.anchors = None if kernel_size is not None else _pair(
                DEFAULT_ANCHORS if anchors is None else anchors, 'anchors')

    def bind(self, student_points: Mapping[str, TapPoint],
             teacher_points: Mapping[str, TapPoint]) -> None:
        tap = self.taps[0]
        c_s, c_t = student_points[tap].channels, teacher_points[tap].channels
        self.theta = _connector(self.kinds['theta'], c_s, c_t, 'theta')
        self.phi = _connector(self.kinds['phi'], c_t, c_t, 'phi')
        self.gamma = _connector(self.kinds['gamma'], c_s, c_t, 'gamma')

    def anchor_kernel(self, height: int, width: int) -> Tuple[int, int]:
        """The anchor pooling kernel for a teacher map of ``height x width``."""
        if self.kernel_size is not None:
            return self.kernel_size
        a_h, a_w = self.anchors
        if a_h > height or a_w > width:
            raise ValueError(f'TaT: anchors=({a_h}, {a_w}) needs a feature map of at least '
                             f'that many cells per side, got {height}x{width}.')
        return height // a_h, width // a_w

    def forward(self, student: Dict[str, Tensor], teacher: Dict[str, Tensor],
                data_samples: Optional[Any] = None) -> Dict[str, Tensor]:
        """``student[tap]`` ``[N, C_s, Hs, Ws]``, ``teacher[tap]`` ``[N, C_t, H, W]`` ->
        ``{'loss_<name>': scalar}``."""
        if self.theta is None:
            raise RuntimeError('TaT builds its connectors in bind(); the Distiller calls it. '
                               'Call method.bind(student_points, teacher_points) first.')
        tap = self.taps[0]
        feat_s, feat_t = student[tap], teacher[tap].detach()
        kernel = self.anchor_kernel(*feat_t.shape[2:]) if self.mode == 'hierarchical' else None
        path = select_path(self.implementation, feat_t.device.type, self.mode,
                           self.kinds.values(), feat_s.shape[2:], feat_t.shape[2:],
                           self.patches, self.groups, kernel)
        connectors = (self.theta, self.phi, self.gamma)
        if path == 'reference':
            loss = self._loss(self.theta(feat_s), self.phi(feat_t), self.gamma(feat_s), feat_t,
                              kernel)
        elif path == 'chunked':
            loss = chunked_loss(connectors, feat_s, feat_t, partial(self._loss, kernel=kernel))
        else:                                                            # 'tiled'
            loss = chunked_loss(connectors, feat_s, feat_t, partial(self._tiled_loss,
                                                                    kernel=kernel),
                                tiles=(self.patches, self.groups))
        return {f'loss_{self.name}': self.loss_weight * loss}

    def _loss(self, query: Tensor, key: Tensor, value: Tensor, target: Tensor,
              kernel: Optional[Tuple[int, int]] = None) -> Tensor:
        """The mode's loss without ``loss_weight`` (reference functions): embeddings
        ``[B, C_t, Hs, Ws]`` (resized to the target's ``H, W``) and teacher map
        ``[B, C_t, H, W]`` -> scalar."""
        size = target.shape[2:]
        if query.shape[2:] != size:
            query = F.interpolate(query, size=size, mode='bilinear', align_corners=False)
            value = F.interpolate(value, size=size, mode='bilinear', align_corners=False)
        if self.mode == 'global':
            return tat_loss(query, key, value, target, self.efficient)
        return self.delta * tat_patch_group_loss(query, key, value, target, self.patches,
                                                 self.groups) + \
            self.zeta * tat_anchor_loss(query, key, value, target, kernel, self.efficient)

    def _tiled_loss(self, query: Tensor, key: Tensor, value: Tensor, target: Tensor,
                    kernel: Tuple[int, int]) -> Tensor:
        """:meth:`_loss` of the hierarchical mode on :class:`~kdbench.distill.tat_fast.
        GroupTiles` of the embeddings and the teacher map (``'tiled'`` path)."""
        per_group = self.patches[0] * self.patches[1] // self.groups
        patch, anchor = tiled_losses(query, key, value, target, self.groups, per_group,
                                     kernel, self.efficient)
        return self.delta * patch + self.zeta * anchor

    def extra_repr(self) -> str:
        text = f'{super().extra_repr()}, mode={self.mode}, connectors={self.kinds}'
        if self.implementation != 'auto':
            text += f', implementation={self.implementation}'
        if self.mode == 'hierarchical':
            anchors = (f'kernel_size={self.kernel_size}' if self.kernel_size is not None
                       else f'anchors={self.anchors}')
            text += (f', delta={self.delta}, zeta={self.zeta}, patches={self.patches}, '
                     f'groups={self.groups}, {anchors}')
        return text
