"""Build Pascal VOC 2012 aug (SegmentationClassAug/ + train_aug.txt) from VOC 2012 and SBD.

    python tools/prepare_voc_aug.py [--voc PATH] [--sbd PATH] [--out-root data]
                                    [--download] [--expect 10582]

--voc: the VOC2012 folder, VOCdevkit, or VOCtrainval_11-May-2012.tar (extracted into
--out-root); --sbd: benchmark_RELEASE (or its dataset/ folder) or benchmark.tgz. With
--download both come through torchvision's dataset classes into --out-root first.
"""
import argparse
import os
import sys

from tasks.segmentation.prepare import TRAIN_AUG_SIZE, download_voc_aug, prepare_voc_aug


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--voc', default=os.path.join('data', 'VOCdevkit', 'VOC2012'),
                        help='VOC2012 folder, VOCdevkit, or the VOC 2012 trainval tar')
    parser.add_argument('--sbd', default=os.path.join('data', 'benchmark_RELEASE'),
                        help='SBD benchmark_RELEASE (or its dataset/) folder, or benchmark.tgz')
    parser.add_argument('--out-root', default='data', help='where archives are extracted')
    parser.add_argument('--download', action='store_true',
                        help='download VOC 2012 and SBD (torchvision) into --out-root first')
    parser.add_argument('--expect', type=int, default=TRAIN_AUG_SIZE,
                        help='required number of train_aug ids (0: any)')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.download:
        paths = download_voc_aug(args.out_root)
        args.voc, args.sbd = paths['voc'], paths['sbd']
    try:
        prepare_voc_aug(args.voc, args.sbd, args.out_root, args.expect or None)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'prepare_voc_aug: {err}')


if __name__ == '__main__':
    main()
