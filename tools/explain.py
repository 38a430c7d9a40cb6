"""Explain a distilled student: CAMs, Grad-CAM, UniCAM figures and FSS/RS per layer.

    python tools/explain.py STUDENT_CFG STUDENT_CKPT [--base BASE_CFG BASE_CKPT]
        [--teacher TEACHER_CFG TEACHER_CKPT | --no-teacher] [--images N] [--batch-size B]
        [--rows R] [--taps stage1 stage2 ...] [--cam gradcam|hirescam]
        [--label-embeddings minilm|onehot] [--cache DIR] [--no-perturb] [--keep F]
        [--split test|val|train] [--device cpu|cuda] [--scoring paper|code] [--out DIR]
        [--trust-checkpoint]

STUDENT_CFG may be the distillation config the student was trained with (its student is
explained and, unless --teacher or --no-teacher, its teacher shown when teacher_ckpt
exists). BASE is the student's architecture trained without a teacher (default: the
teacher when it has the student's architecture). Writes DIR/explain.png, DIR/stages.png,
DIR/scores.json and DIR/scores.md (default DIR: work_dirs/explain). --scoring paper (the
default) follows the paper's text, --scoring code the official UniCAM code (pooled final
features for UniCAM, one last-stage HiResCAM map per model for FSS/RS, fixed-size chunks);
see docs/explain.md.
"""
import argparse
from typing import Optional, Sequence

from kdbench.apis.cli import add_trust_option
from kdbench.explain import explain_distillation
from kdbench.explain.labels import DEFAULT_CACHE, LABEL_EMBEDDINGS
from kdbench.explain.maps import GRAD_CAM_METHODS
from kdbench.explain.scoring import SCORINGS
from kdbench.utils.checkpoint import trusted_checkpoints


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('student_config', help="the student's config or its distillation config")
    parser.add_argument('student_checkpoint', help="the student's (or Distiller's) checkpoint")
    parser.add_argument('--base', nargs=2, metavar=('BASE_CFG', 'BASE_CKPT'),
                        help="the student's architecture trained without a teacher")
    teacher = parser.add_mutually_exclusive_group()
    teacher.add_argument('--teacher', nargs=2, metavar=('TEACHER_CFG', 'TEACHER_CKPT'),
                         help='the teacher (a task-model config)')
    teacher.add_argument('--no-teacher', action='store_true',
                         help="do not show the distillation config's teacher")
    parser.add_argument('--images', type=int, default=128, help='number of images scored')
    parser.add_argument('--batch-size', type=int, default=32,
                        help='images per batch of the batch-level scores (> 3)')
    parser.add_argument('--rows', type=int, default=6, help='images shown in the figures')
    parser.add_argument('--taps', nargs='+', help='layers (tap names); default every stage')
    parser.add_argument('--cam', choices=sorted(GRAD_CAM_METHODS), default=None,
                        help="saliency method (default: the scoring's, gradcam for paper, "
                             'hirescam for code)')
    parser.add_argument('--scoring', choices=sorted(SCORINGS), default='paper',
                        help="paper: the paper's choices (default); code: the official "
                             "code's (see docs/explain.md)")
    parser.add_argument('--label-embeddings', choices=LABEL_EMBEDDINGS, default='minilm',
                        help='class-name sentence embeddings or one-hot vectors')
    parser.add_argument('--cache', default=DEFAULT_CACHE, help='label-embedding cache folder')
    parser.add_argument('--no-perturb', action='store_true',
                        help='score the raw images (no saliency-guided ROAD perturbation)')
    parser.add_argument('--keep', type=float, default=0.5,
                        help='share of the most salient pixels the perturbation keeps')
    parser.add_argument('--split', choices=['test', 'val', 'train'], default='test',
                        help="which dataloader's dataset of the student config")
    parser.add_argument('--device', default='cpu', help='where the models run')
    parser.add_argument('--seed', type=int, default=0, help='seed of the imputation noise')
    parser.add_argument('--out', default='work_dirs/explain', help='output folder')
    add_trust_option(parser)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    with trusted_checkpoints(args.trust_checkpoint):
        report = explain_distillation(
            (args.student_config, args.student_checkpoint),
            base=tuple(args.base) if args.base else None,
            teacher=tuple(args.teacher) if args.teacher else None, out_dir=args.out,
            num_images=args.images, batch_size=args.batch_size, rows=args.rows,
            taps=args.taps, method=args.cam, labels=args.label_embeddings,
            cache_dir=args.cache, keep=None if args.no_perturb else args.keep,
            split=args.split, device=args.device, seed=args.seed,
            auto_teacher=not args.no_teacher, scoring=args.scoring)
    print(f'{args.out}/scores.md:')
    with open(f'{args.out}/scores.md') as f:
        print(f.read())
    return report


if __name__ == '__main__':
    main()
