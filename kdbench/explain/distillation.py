"""Explain one distillation run: figures and the FSS/RS table (``tools/explain.py``).

Models: the **student** (a task config or the distillation config it was trained with),
the **base** model (the student's architecture trained without a teacher; the teacher
itself when it has the student's architecture, as in the paper) and optionally the
**teacher** (by default the teacher of a distillation config, when its checkpoint exists).
Images: the first ``num_images`` of the student config's ``<split>`` dataset, normalised
by the student's data preprocessor for every model, in batches of about ``batch_size``.

Outputs in ``out_dir``: ``explain.png`` (input; teacher, base and student CAMs of the
ground-truth class; UniCAM distilled and residual features at the figure layer),
``stages.png`` (per layer: Grad-CAM of each model and both UniCAMs), ``scores.json`` and
``scores.md`` (FSS and RS per layer, :mod:`kdbench.explain.scores`).
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from kdbench.distill.taps import resolve_taps
from kdbench.utils.atomic_io import write_atomically

from .cams import CAM_TAPS
from .figure import Column, overlay_grid
from .inputs import as_config, class_count, first_samples, load_task_model, preprocess
from .labels import DEFAULT_CACHE, label_embeddings
from .maps import GRAD_CAM_METHODS, cam_maps, grad_cam
from .scores import SCORE_COLUMNS, explain_batch, image_classes
from .scoring import get_scoring, score_batches

#: A model the user named: ``(config, checkpoint)``.
Spec = Tuple[str, str]
ROLES = ('teacher', 'base', 'student')
_STAGE_PREFIX = 'stage'


def stage_taps(models: Dict[str, nn.Module], taps: Optional[Sequence[str]] = None) -> List[str]:
    """The layers to explain: ``taps`` (checked in the student and the base model), or the
    student's ``stage1, stage2, ...`` taps that the base model also declares."""
    student, base = models['student'], models['base']
    if taps:
        for owner in ('student', 'base'):
            resolve_taps(models[owner], taps, owner)
        return list(taps)
    table = getattr(student, 'tap_points', None) or {}
    stages = [name for name in table if name.startswith(_STAGE_PREFIX) and
              name[len(_STAGE_PREFIX):].isdigit() and name in base.tap_points]
    if not stages:
        raise KeyError('The student declares no stage taps (stage1, stage2, ...) shared with '
                       f'the base model; name the layers with --taps (student taps: '
                       f'{", ".join(sorted(table))}).')
    return sorted(stages, key=lambda name: int(name[len(_STAGE_PREFIX):]))


def _same_architecture(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


def load_models(student: Spec, base: Optional[Spec], teacher: Optional[Spec],
                device: str = 'cpu', teacher_part: str = 'student'
                ) -> Tuple[Dict[str, nn.Module], Dict[str, Spec]]:
    """Build and load the models by role; the base model defaults to a teacher of the
    student's architecture. Checks that all classify the same classes.

    Args:
        student, base, teacher: ``(config, checkpoint)``; ``base`` and ``teacher`` may
            be ``None``.
        teacher_part: ``'teacher'`` when the teacher comes from a distillation config.
    """
    specs = {'student': student}
    models = {'student': load_task_model(*student, 'student', 'STUDENT_CKPT', device)}
    if teacher is not None:
        specs['teacher'] = teacher
        models['teacher'] = load_task_model(*teacher, 'teacher', 'TEACHER_CKPT', device,
                                            part=teacher_part)
    if base is not None:
        specs['base'] = base
        models['base'] = load_task_model(*base, 'base', 'BASE_CKPT', device)
    elif teacher is not None and _same_architecture(models['teacher'], models['student']):
        specs['base'], models['base'] = teacher, models['teacher']
    else:
        raise ValueError('No base model: pass --base BASE_CFG BASE_CKPT (the student\'s '
                         'architecture trained without a teacher); the teacher can stand in '
                         'only when it has the student\'s architecture.')
    counts = {role: class_count(model) for role, model in models.items()}
    if None in counts.values():
        raise TypeError(f"The {', '.join(r for r, c in counts.items() if c is None)} model "
                        "declares no 'logits' tap, so its classes are unknown.")
    if len(set(counts.values())) != 1:
        found = ', '.join(f'{role} {counts[role]} ({specs[role][0]})' for role in counts)
        raise ValueError(f'The models were trained on different class sets: {found} classes. '
                         'FSS, RS and UniCAM compare models on the same classes.')
    return models, specs


def _teacher_of(cfg_path: str) -> Optional[Spec]:
    """``(config, teacher_ckpt)`` of a distillation config whose teacher checkpoint exists."""
    model_cfg = as_config(cfg_path).model
    ckpt = model_cfg.get('teacher_ckpt') if 'teacher' in model_cfg else None
    return (cfg_path, ckpt) if ckpt and os.path.isfile(os.path.expanduser(ckpt)) else None


def _output_maps(model: nn.Module, inputs: Tensor, classes: Tensor, owner: str, tap: str,
                 method: str) -> Tuple[str, Tensor]:
    """CAM for a GAP-linear classifier, else Grad-CAM at ``tap``: ``(title, [R, H, W])``."""
    table = getattr(model, 'tap_points', {})
    if all(name in table for name in CAM_TAPS) and table['classifier'].param is not None:
        return 'CAM', cam_maps(model, inputs, classes, owner)
    return GRAD_CAM_METHODS[method], grad_cam(model, inputs, tap, classes, method, owner)


def explain_distillation(student: Spec, base: Optional[Spec] = None,
                         teacher: Optional[Spec] = None, out_dir: str = 'work_dirs/explain',
                         num_images: int = 128, batch_size: int = 32, rows: int = 6,
                         taps: Optional[Sequence[str]] = None, method: Optional[str] = None,
                         labels: str = 'minilm', cache_dir: Optional[str] = DEFAULT_CACHE,
                         keep: Optional[float] = 0.5, split: str = 'test', device: str = 'cpu',
                         seed: int = 0, auto_teacher: bool = True, progress: bool = True,
                         scoring: str = 'paper') -> dict:
    """Write ``explain.png``, ``stages.png``, ``scores.json`` and ``scores.md`` to
    ``out_dir``; returns the ``scores.json`` content.

    Args:
        student, base, teacher: ``(config, checkpoint)`` of each model (see module doc).
        num_images: images used (``> 3``; batches of at least 4 are needed by dCor).
        batch_size: images per batch for the batch-level scores and UniCAM (``> 3``).
        rows: images shown in the figures.
        taps: layers (tap names); default the stages ``stage1, stage2, ...``.
        method: ``'gradcam'`` or ``'hirescam'`` (the saliency maps); default the
            scoring's (``paper``: Grad-CAM, ``code``: HiResCAM).
        labels: ``'minilm'`` or ``'onehot'`` label embeddings (:mod:`.labels`).
        cache_dir: label-embedding cache folder.
        keep: share of pixels the perturbation keeps; ``None`` switches it off.
        split: which dataloader of the student config gives the images.
        auto_teacher: take the teacher of a distillation student config when ``teacher``
            is not given.
        progress: show a progress bar.
        scoring: ``'paper'`` or ``'code'``, the paper's or the official code's choices
            (:mod:`kdbench.explain.scoring`).
    """
    if num_images <= 3 or batch_size <= 3:
        raise ValueError(f'Distance correlation needs more than 3 samples per batch: got '
                         f'--images {num_images} and --batch-size {batch_size}.')
    protocol = get_scoring(scoring)
    method = method or protocol.cam
    teacher_part = 'student'
    if teacher is None and auto_teacher:
        teacher = _teacher_of(student[0])
        teacher_part = 'teacher' if teacher else teacher_part
    models, specs = load_models(student, base, teacher, device, teacher_part)
    layers = stage_taps(models, taps)
    num_classes = class_count(models['student'])

    images, targets, names = first_samples(student[0], num_images, split)
    if len(images) <= 3:
        raise ValueError(f'The {split} set has only {len(images)} images; more than 3 are '
                         'needed.')
    names = names or [str(k) for k in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f'The dataset has {len(names)} classes but the models have '
                         f'{num_classes}.')
    classes = image_classes(targets, num_classes, _background(names))
    embeddings = label_embeddings(names, labels, cache_dir)[classes]
    inputs = preprocess(models['student'], images, targets)
    batches, divisor = score_batches(len(images), batch_size, protocol.batching)
    rows = max(1, min(rows, len(images)))

    bar = _progress(len(batches) * len(layers)) if progress else None
    sums: Dict[str, Dict[str, float]] = {tap: {} for tap in layers}
    shown: Dict[str, Dict[str, List[Tensor]]] = {tap: {} for tap in layers}
    for index in batches:
        for tap in layers:
            present = {role: m for role, m in models.items()
                       if role != 'teacher' or tap in m.tap_points}
            scores, maps = explain_batch(present, inputs[index], classes[index],
                                         embeddings[index], tap, method, keep, seed, protocol)
            for key, value in scores.items():
                sums[tap][key] = sums[tap].get(key, 0.0) + value / divisor
            first = index < rows
            if first.any():
                for key, value in maps.items():
                    shown[tap].setdefault(key, []).append(value[first])
            if bar is not None:
                bar.update()
    if bar is not None:
        print()

    report = _report(specs, models, inputs, classes, names, layers, sums, len(images),
                     batches, method, labels, keep, split)
    report.update(scoring=scoring, scoring_choices=protocol.description, divisor=divisor)
    if teacher_part == 'teacher':
        report['models']['teacher']['part'] = 'model.teacher'
    os.makedirs(out_dir, exist_ok=True)
    _write_figures(out_dir, models, (images[:rows], inputs[:rows], classes[:rows]), shown,
                   names, method)
    write_atomically(json.dumps(report, indent=2), os.path.join(out_dir, 'scores.json'))
    write_atomically(markdown_table(report), os.path.join(out_dir, 'scores.md'))
    return report


def _write_figures(out_dir: str, models: Dict[str, nn.Module],
                   view: Tuple[Tensor, Tensor, Tensor], shown: Dict[str, Dict[str, List[Tensor]]],
                   names: Sequence[str], method: str) -> None:
    """``explain.png`` (output CAMs and UniCAMs at the last layer) and ``stages.png``."""
    captions = [f'label {names[int(c)]}' for c in view[2]]
    last = list(shown)[-1]
    overlay_grid(view[0], _main_columns(models, view, shown[last], last, names, method),
                 captions).save(os.path.join(out_dir, 'explain.png'))
    overlay_grid(view[0], _stage_columns(shown), captions).save(
        os.path.join(out_dir, 'stages.png'))


def _background(names: Sequence[str]) -> List[int]:
    return [k for k, name in enumerate(names) if str(name).lower() == 'background']


def _progress(total: int):
    from mmengine.utils import ProgressBar
    return ProgressBar(total)


def _main_columns(models: Dict[str, nn.Module], view: Tuple[Tensor, Tensor, Tensor],
                  shown: Dict[str, List[Tensor]], tap: str, names: Sequence[str],
                  method: str) -> List[Column]:
    _, inputs, classes = view
    columns = []
    for role in ROLES:
        if role in models:
            model = models[role]
            with torch.no_grad():
                preds = model(inputs).argmax(dim=1)
            if preds.dim() > 1:     # a segmentor: its main predicted class
                preds = image_classes(preds.cpu(), len(names), _background(names))
            title, maps = _output_maps(model, inputs, classes, role, tap, method)
            columns.append(Column(title, role, maps, [f'pred {names[int(p)]}' for p in preds]))
    columns += [Column(f'UniCAM {tap}', 'distilled', torch.cat(shown['distilled'])),
                Column(f'UniCAM {tap}', 'residual', torch.cat(shown['residual']))]
    return columns


def _stage_columns(shown: Dict[str, Dict[str, List[Tensor]]]) -> List[Column]:
    order = ROLES + ('distilled', 'residual')
    return [Column(tap, key, torch.cat(maps[key]))
            for tap, maps in shown.items() for key in order if key in maps]


def _accuracy(model: nn.Module, inputs: Tensor, classes: Tensor) -> Optional[float]:
    with torch.no_grad():
        logits = model(inputs)
    if logits.dim() != 2:
        return None
    return float((logits.argmax(dim=1).cpu() == classes).float().mean())


def _report(specs: Dict[str, Spec], models: Dict[str, nn.Module], inputs: Tensor,
            classes: Tensor, names: Sequence[str], layers: Sequence[str],
            sums: Dict[str, Dict[str, float]], num_images: int, batches: Sequence[Tensor],
            method: str, labels: str, keep: Optional[float], split: str) -> dict:
    return dict(
        models={role: dict(config=cfg, checkpoint=ckpt,
                           top1=_accuracy(models[role], inputs, classes))
                for role, (cfg, ckpt) in specs.items()},
        images=num_images, split=split, batches=len(batches),
        batch_sizes=sorted({len(b) for b in batches}), classes=list(map(str, names)),
        cam=method, label_embeddings=labels,
        perturbation=None if keep is None else dict(method='ROAD least-relevant-first',
                                                    keep=keep),
        taps=list(layers), scores={tap: {k: sums[tap][k] for k in SCORE_COLUMNS
                                         if k in sums[tap]} for tap in layers})


def markdown_table(report: dict) -> str:
    """``scores.md``: the models, the set-up and one FSS/RS row per layer."""
    keys = [k for k in SCORE_COLUMNS if any(k in row for row in report['scores'].values())]
    lines = ['# FSS and RS per layer', '']
    for role in ROLES:
        if role in report['models']:
            m = report['models'][role]
            top1 = '' if m['top1'] is None else f", top-1 {100 * m['top1']:.1f}% on these images"
            part = f" {m['part']}" if 'part' in m else ''
            lines.append(f"- {role}: `{m['config']}`{part} (`{m['checkpoint']}`){top1}")
    perturb = report['perturbation']
    lines += [f"- {report['images']} {report['split']} images in {report['batches']} batches "
              f"({'/'.join(map(str, report['batch_sizes']))}); maps: {report['cam']}; label "
              f"embeddings: {report['label_embeddings']}; perturbation: "
              + (f"{perturb['method']}, keep {100 * perturb['keep']:.0f}% of the pixels"
                 if perturb else 'none'),
              f"- scoring: {report.get('scoring', 'paper')}"
              + (f" ({report['scoring_choices']})" if 'scoring_choices' in report else ''), '',
              '| layer | ' + ' | '.join(SCORE_COLUMNS[k][0] for k in keys) + ' |',
              '|---|' + '---:|' * len(keys)]
    for tap, row in report['scores'].items():
        cells = [f'{row[k]:.4f}' if k in row else '-' for k in keys]
        lines.append(f'| {tap} | ' + ' | '.join(cells) + ' |')
    lines += [''] + [f'- {SCORE_COLUMNS[k][0]}: {SCORE_COLUMNS[k][1]}.' for k in keys]
    return '\n'.join(lines) + '\n'
