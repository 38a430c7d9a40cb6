"""Draw the class activation maps of a teacher and a student side by side (CAT-KD's view).

    python tools/visualize_cams.py TEACHER_CFG TEACHER_CKPT STUDENT_CFG STUDENT_CKPT
        [--out DIR] [--images N] [--topk K] [--resolution R] [--split test|val|train]
        [--device cpu|cuda] [--trust-checkpoint]

For the first N images of the student config's test set, each row shows the image and,
for the teacher's top-K classes, both models' CAMs at full resolution and pooled to R x R.
Writes DIR/cams.png and DIR/cams.json (default DIR: work_dirs/cams). STUDENT_CFG may be a
distillation config (its student is used).
"""
import argparse

from kdbench.apis.cli import add_trust_option
from kdbench.explain import visualize_cams
from kdbench.utils.checkpoint import trusted_checkpoints


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('teacher_config', help="the teacher's task-model config")
    parser.add_argument('teacher_checkpoint', help="the teacher's checkpoint")
    parser.add_argument('student_config', help="the student's config or a distillation config")
    parser.add_argument('student_checkpoint', help="the student's (or Distiller's) checkpoint")
    parser.add_argument('--out', default='work_dirs/cams', help='output folder')
    parser.add_argument('--images', type=int, default=8, help='number of images (rows)')
    parser.add_argument('--topk', type=int, default=3, help="teacher's top classes per image")
    parser.add_argument('--resolution', type=int, default=2, help='side of the pooled CAMs')
    parser.add_argument('--split', choices=['test', 'val', 'train'], default='test',
                        help="which dataloader's dataset of the student config")
    parser.add_argument('--device', default='cpu', help='where the models run')
    add_trust_option(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with trusted_checkpoints(args.trust_checkpoint):
        png = visualize_cams(args.teacher_config, args.teacher_checkpoint,
                             args.student_config, args.student_checkpoint, args.out,
                             num_images=args.images, topk=args.topk,
                             resolution=args.resolution, split=args.split, device=args.device)
    print(png)


if __name__ == '__main__':
    main()
