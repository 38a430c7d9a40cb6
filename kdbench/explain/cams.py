"""Class activation maps of a teacher and a student, side by side (CAT-KD's view).

``CAM_k = sum_j W[k, j] F_j`` (no bias) from the feature before global pooling (tap
``pre_pool``) and the classifier weight (tap ``classifier``), as in
:mod:`kdbench.distill.cat_kd`. :func:`visualize_cams` draws, for the first images of a
dataset, the CAMs of the teacher's top-k classes (ranked by the teacher's converted
logits ``GAP(CAM)``) for both models, at full resolution and pooled to ``r x r`` (what
CAT-KD transfers), and writes ``cams.png`` and ``cams.json``.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor, nn

from kdbench.distill.cat_kd import class_activation_maps, select_cams
from kdbench.distill.taps import Taps, resolve_taps
from kdbench.utils.weights import load_task_weights

from .inputs import as_config, build_task_model, first_samples, preprocess

CAM_TAPS = ('pre_pool', 'classifier')

# Picture layout, in pixels.
MIN_TILE = 96       # tiles of smaller images are upscaled (nearest) to at least this side
PAD = 4             # gap around tiles
GROUP_GAP = 8       # extra gap before each top-k group of four tiles
CAPTION = 14        # text line under each tile
HEADER = 2 * CAPTION + PAD  # two lines of column headers
ALPHA = 0.5         # weight of the colour-mapped CAM over the image

# Colour map: dark blue -> blue -> cyan -> yellow -> red, piecewise linear in [0, 1].
_STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_COLOURS = np.array([[0, 0, 128], [0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0]],
                    dtype=np.float64)


def colour_map(values: np.ndarray) -> np.ndarray:
    """Map values in ``[0, 1]`` (any shape ``S``) to uint8 RGB ``S + (3,)``."""
    values = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    rgb = [np.interp(values, _STOPS, _COLOURS[:, c]) for c in range(3)]
    return np.stack(rgb, axis=-1).round().astype(np.uint8)


def model_cams(model: nn.Module, inputs: Tensor, owner: str = 'model') -> Tuple[Tensor, Tensor]:
    """CAMs ``[N, K, h, w]`` (without the classifier bias) and logits ``[N, K]`` of a task
    model on a preprocessed float batch ``[N, 3, H, W]``.

    The model runs in eval mode under ``no_grad`` (its mode is restored afterwards); it
    must declare the taps ``pre_pool`` (feature before global pooling) and ``classifier``
    (the linear classifier's weight ``[K, C]``). ``GAP(cams) + bias == logits``.
    """
    points = resolve_taps(model, CAM_TAPS, owner)
    if points['classifier'].param is None:
        raise ValueError(f"The {owner}'s 'classifier' tap must read the classifier's weight "
                         '(a GAP-linear head) to build class activation maps.')
    param = next(model.parameters(), None)
    if param is not None:
        inputs = inputs.to(param.device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), Taps(model, points) as taps:
            logits = model(inputs, mode='tensor')
            cams = class_activation_maps(taps['pre_pool'], taps['classifier'])
    finally:
        model.train(was_training)
    return cams, logits


def _font(size: int = 11):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):   # Pillow < 10.1 or no FreeType
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """``text`` shortened with '..' to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + '..', font=font) > width:
        text = text[:-1]
    return text + '..'


def _normalise(cam: Tensor) -> np.ndarray:
    """Min-max normalisation of one map to ``[0, 1]`` (a constant map -> 0.5)."""
    low, high = cam.min(), cam.max()
    if float(high - low) < 1e-12:
        return np.full(tuple(cam.shape), 0.5)
    return ((cam - low) / (high - low)).numpy()


def _blend(image: np.ndarray, cam01: np.ndarray) -> Image.Image:
    """The colour-mapped ``cam01`` ``[h, w]`` in ``[0, 1]`` over ``image`` ``[h, w, 3]``."""
    mixed = (1 - ALPHA) * image.astype(np.float64) + ALPHA * colour_map(cam01)
    return Image.fromarray(mixed.round().astype(np.uint8))


def _tiles(cam: Tensor, image: np.ndarray, size: Tuple[int, int],
           resolution: int) -> Tuple[Image.Image, Image.Image, Tensor]:
    """Full (bilinear) and pooled (``r x r``, nearest) tiles of one CAM ``[h, w]``, and
    the pooled values ``[r, r]``."""
    full = F.interpolate(cam[None, None].float(), size=size, mode='bilinear',
                         align_corners=False)[0, 0]
    pooled = F.adaptive_avg_pool2d(cam[None, None].float(), resolution)[0, 0]
    cells = F.interpolate(torch.from_numpy(_normalise(pooled))[None, None], size=size,
                          mode='nearest')[0, 0].numpy()
    return _blend(image, _normalise(full)), _blend(image, cells), pooled


def _write_cells(draw: ImageDraw.ImageDraw, origin: Tuple[int, int], size: Tuple[int, int],
                 values: Tensor, font) -> None:
    """Grid lines and, where they fit, the pooled values on a pooled tile."""
    r = values.shape[0]
    x0, y0 = origin
    h, w = size
    for i in range(1, r):
        draw.line([(x0 + i * w // r, y0), (x0 + i * w // r, y0 + h - 1)], fill=(255, 255, 255))
        draw.line([(x0, y0 + i * h // r), (x0 + w - 1, y0 + i * h // r)], fill=(255, 255, 255))
    for i in range(r):
        for j in range(r):
            text = f'{float(values[i, j]):.3g}'
            box = draw.textbbox((0, 0), text, font=font)
            tw, th = box[2] - box[0], box[3] - box[1]
            if tw + 4 > w // r or th + 4 > h // r:
                return
            cx = x0 + (2 * j + 1) * w // (2 * r) - tw // 2
            cy = y0 + (2 * i + 1) * h // (2 * r) - th // 2
            draw.rectangle([cx - 2, cy - 2, cx + tw + 1, cy + th + 1], fill=(0, 0, 0))
            draw.text((cx - box[0], cy - box[1]), text, fill=(255, 255, 255), font=font)


def draw_legend(canvas: Image.Image, draw: ImageDraw.ImageDraw, tile_width: int) -> None:
    """The colour bar ('lo' .. 'hi') over the first column and its header 'input'."""
    bar_w = max(8, tile_width - 30)
    bar = colour_map(np.linspace(0, 1, bar_w))[None].repeat(CAPTION - 4, axis=0)
    draw.text((PAD, PAD), 'lo', fill=(0, 0, 0), font=_font(10))
    canvas.paste(Image.fromarray(bar), (PAD + 14, PAD + 2))
    draw.text((PAD + 16 + bar_w, PAD), 'hi', fill=(0, 0, 0), font=_font(10))
    draw.text((PAD, PAD + CAPTION), 'input', fill=(0, 0, 0), font=_font(11))


def tile_size(height: int, width: int) -> Tuple[int, int]:
    """Side of the tiles of ``height x width`` images: nearest-upscaled by an integer factor
    until the shorter side is at least :data:`MIN_TILE`."""
    scale = max(1, -(-MIN_TILE // min(height, width)))
    return height * scale, width * scale


def grid_size(num_images: int, topk: int, height: int, width: int) -> Tuple[int, int]:
    """``(width, height)`` of :func:`cam_grid`'s picture."""
    th, tw = tile_size(height, width)
    columns = 1 + 4 * topk
    return (PAD + columns * (tw + PAD) + topk * GROUP_GAP,
            HEADER + PAD + num_images * (th + CAPTION + PAD))


def cam_grid(images: Tensor, teacher_cams: Tensor, student_cams: Tensor, class_ids: Tensor,
             class_names: Sequence[str], resolution: int = 2,
             labels: Optional[Sequence[int]] = None) -> Image.Image:
    """The picture: one row per image, one column group per top-k class.

    Each row holds the input image (captioned with its ground-truth class when ``labels``
    are given), then for each of its ``k`` classes (``class_ids[n]``, best first): the
    teacher's CAM (bilinear-upsampled, min-max normalised per map, colour-mapped over the
    image), the teacher's CAM average-pooled to ``resolution x resolution`` (cells shown
    as blocks, normalised per pooled map, values written when they fit), the student's
    CAM and the student's pooled CAM. Blue is low, red high, per map.

    Args:
        images: uint8 ``[N, 3, H, W]``.
        teacher_cams, student_cams: ``[N, K, h, w]`` (their ``h, w`` may differ).
        class_ids: ``[N, k]`` class indices per image.
        class_names: the ``K`` class names.
        resolution: side of the pooled CAMs.
        labels: ``N`` ground-truth class indices, optional.
    """
    images = torch.as_tensor(images)
    class_ids = torch.as_tensor(class_ids)
    teacher_cams, student_cams = teacher_cams.detach().cpu(), student_cams.detach().cpu()
    if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
        raise ValueError(f'cam_grid expects uint8 images [N, 3, H, W], got {images.dtype} '
                         f'{tuple(images.shape)}.')
    n, _, height, width = images.shape
    if teacher_cams.shape[:2] != student_cams.shape[:2] or teacher_cams.shape[0] != n or \
            class_ids.dim() != 2 or class_ids.shape[0] != n:
        raise ValueError(f'cam_grid: {n} images, teacher CAMs {tuple(teacher_cams.shape)}, '
                         f'student CAMs {tuple(student_cams.shape)} and class ids '
                         f'{tuple(class_ids.shape)} must agree on N (and K).')
    topk = class_ids.shape[1]
    th, tw = tile_size(height, width)
    canvas = Image.new('RGB', grid_size(n, topk, height, width), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font, small = _font(11), _font(10)
    black = (0, 0, 0)

    def column_x(col: int) -> int:
        group = 0 if col == 0 else (col - 1) // 4 + 1
        return PAD + col * (tw + PAD) + group * GROUP_GAP

    # Header: the colour bar and the rank over each group; the model and view per column.
    draw_legend(canvas, draw, tw)
    views = ('teacher', f'teacher {resolution}x{resolution}', 'student',
             f'student {resolution}x{resolution}')
    for rank in range(topk):
        x = column_x(1 + 4 * rank)
        group_w = 4 * tw + 3 * PAD
        draw.line([(x, PAD + CAPTION - 2), (x + group_w - 1, PAD + CAPTION - 2)], fill=black)
        draw.text((x, PAD), _fit(draw, f'top-{rank + 1} class of the teacher', group_w, font),
                  fill=black, font=font)
        for v, view in enumerate(views):
            draw.text((column_x(1 + 4 * rank + v), PAD + CAPTION), _fit(draw, view, tw, font),
                      fill=black, font=font)

    for row in range(n):
        y = HEADER + PAD + row * (th + CAPTION + PAD)
        image = images[row].permute(1, 2, 0).numpy()
        image = image.repeat(th // height, axis=0).repeat(tw // width, axis=1)
        canvas.paste(Image.fromarray(image), (column_x(0), y))
        caption = f'label: {class_names[int(labels[row])]}' if labels is not None \
            else f'image {row}'
        draw.text((column_x(0), y + th), _fit(draw, caption, tw, small), fill=black, font=small)
        for rank in range(topk):
            k = int(class_ids[row, rank])
            for m, cams in enumerate((teacher_cams, student_cams)):
                full, cells, pooled = _tiles(cams[row, k], image, (th, tw), resolution)
                col = 1 + 4 * rank + 2 * m
                canvas.paste(full, (column_x(col), y))
                canvas.paste(cells, (column_x(col + 1), y))
                _write_cells(draw, (column_x(col + 1), y), (th, tw), pooled, small)
                score = float(cams[row, k].float().mean())
                draw.text((column_x(col), y + th),
                          _fit(draw, f'#{rank + 1}: {class_names[k]}', tw, small),
                          fill=black, font=small)
                draw.text((column_x(col + 1), y + th),
                          _fit(draw, f'GAP {score:.3g}', tw, small), fill=black, font=small)
    return canvas


def _build_cam_model(cfg: Union[str, Config], owner: str) -> Tuple[nn.Module, int]:
    """The task model of ``cfg`` (a Distiller config's student) and its class count,
    weights not loaded yet; it must declare the CAM taps."""
    model = build_task_model(cfg)
    resolve_taps(model, CAM_TAPS, owner)
    return model, model.tap_points['classifier'].channels


def visualize_cams(teacher_cfg: Union[str, Config], teacher_ckpt: str,
                   student_cfg: Union[str, Config], student_ckpt: str, out_dir: str,
                   num_images: int = 8, topk: int = 3, resolution: int = 2,
                   split: str = 'test', device: str = 'cpu') -> str:
    """Write ``cams.png`` (:func:`cam_grid`) and ``cams.json`` to ``out_dir``; returns the
    PNG's path.

    Args:
        teacher_cfg, student_cfg: config files (or loaded configs) of the task models; a
            distillation config stands for its student. The student config's
            ``<split>_dataloader.dataset`` provides the images and its data preprocessor
            normalises them for both models.
        teacher_ckpt, student_ckpt: checkpoints (task model, mmengine or Distiller).
        out_dir: output folder (created).
        num_images: the first ``num_images`` samples of the dataset.
        topk: classes per image, the teacher's highest converted logits ``GAP(CAM)``.
        resolution: side of the pooled CAMs.
        split: ``'test'``, ``'val'`` or ``'train'``: which dataloader's dataset.
        device: where the models run.

    ``cams.json`` is a list with one entry per image: ``index``, ``label``,
    ``label_name``, ``class_ids``, ``class_names`` (top-k, best first), the models'
    converted logits for them (``teacher_scores``, ``student_scores``) and their pooled
    CAMs ``teacher_pooled`` / ``student_pooled`` (``[k][r][r]``).
    """
    if num_images < 1 or resolution < 1:
        raise ValueError(f'visualize_cams: num_images and resolution must be >= 1, got '
                         f'{num_images} and {resolution}.')
    teacher_cfg, student_cfg = as_config(teacher_cfg), as_config(student_cfg)
    teacher, t_classes = _build_cam_model(teacher_cfg, 'teacher')
    student, s_classes = _build_cam_model(student_cfg, 'student')
    if t_classes != s_classes:
        raise ValueError(f'The teacher has {t_classes} classes but the student has '
                         f'{s_classes}; CAMs are compared class by class, so both must '
                         'classify the same classes.')
    if not 1 <= topk <= t_classes:
        raise ValueError(f'visualize_cams: topk must be in [1, {t_classes}] (the number of '
                         f'classes), got {topk}.')
    load_task_weights(teacher, teacher_ckpt, owner='teacher', source='TEACHER_CKPT')
    load_task_weights(student, student_ckpt, owner='student', source='STUDENT_CKPT')
    teacher.to(device)
    student.to(device)

    images, label_tensor, names = first_samples(student_cfg, num_images, split)
    names = names or [str(k) for k in range(t_classes)]
    if len(names) != t_classes:
        raise ValueError(f'The dataset has {len(names)} classes but the models have '
                         f'{t_classes}.')
    labels = [int(k) for k in label_tensor]
    inputs = preprocess(student, images, label_tensor)

    teacher_cams, _ = model_cams(teacher, inputs, 'teacher')
    student_cams, _ = model_cams(student, inputs, 'student')
    teacher_cams, student_cams = teacher_cams.float().cpu(), student_cams.float().cpu()
    class_ids = select_cams(teacher_cams.mean(dim=(2, 3)), topk, 'top')

    os.makedirs(out_dir, exist_ok=True)
    png = os.path.join(out_dir, 'cams.png')
    cam_grid(images, teacher_cams, student_cams, class_ids, names, resolution,
             labels).save(png)
    with open(os.path.join(out_dir, 'cams.json'), 'w') as f:
        json.dump(_summary(teacher_cams, student_cams, class_ids, names, labels, resolution),
                  f, indent=2)
    return png


def _summary(teacher_cams: Tensor, student_cams: Tensor, class_ids: Tensor,
             names: Sequence[str], labels: Sequence[int], resolution: int) -> List[Dict]:
    entries = []
    for n, ids in enumerate(class_ids.tolist()):
        entry = dict(index=n, label=labels[n], label_name=names[labels[n]], class_ids=ids,
                     class_names=[names[k] for k in ids])
        for owner, cams in (('teacher', teacher_cams), ('student', student_cams)):
            chosen = cams[n, ids]
            entry[f'{owner}_scores'] = chosen.mean(dim=(1, 2)).tolist()
            entry[f'{owner}_pooled'] = F.adaptive_avg_pool2d(chosen, resolution).tolist()
        entries.append(entry)
    return entries
