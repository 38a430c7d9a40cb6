"""Data-loading throughput of a config's dataloader, per number of workers.

    python tools/bench_loader.py CONFIG [--split train|val|test] [--workers 0 1 2]
                                 [--batches N] [--data-root DIR] [--synthetic-voc N]
                                 [--synthetic-cifar N] [--out result.json]

Builds ``<split>_dataloader`` with mmengine's ``Runner.build_dataloader``, reads one batch
(worker start-up, reported apart) and then N batches, and prints images/s. With
``--synthetic-voc N`` it first writes N random 500x375 JPEG + palette PNG pairs in the VOC
layout to a temporary folder and points the dataset's ``data_root`` at it;
``--synthetic-cifar N`` writes CIFAR-100 python files (``train``, ``test``, ``meta``) with
N random 32x32 images each instead.
"""
import argparse
import copy
import json
import os
import pickle
import tempfile
import time

import numpy as np
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image


def write_synthetic_voc(root: str, n: int, size=(375, 500), seed: int = 0) -> None:
    """``n`` random image/label pairs (H, W = ``size``) listed in train_aug.txt and val.txt."""
    rng = np.random.default_rng(seed)
    for sub in ('JPEGImages', 'SegmentationClassAug', 'ImageSets/Segmentation'):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    ids = [f'{i:06d}' for i in range(n)]
    for name in ids:
        blocks = rng.integers(0, 256, (size[0] // 25 + 1, size[1] // 25 + 1, 3), np.uint8)
        image = np.kron(blocks, np.ones((25, 25, 1), np.uint8))[:size[0], :size[1]]
        Image.fromarray(image).save(os.path.join(root, 'JPEGImages', f'{name}.jpg'), quality=90)
        label = np.kron(rng.integers(0, 21, (size[0] // 25 + 1, size[1] // 25 + 1)),
                        np.ones((25, 25), np.int64))[:size[0], :size[1]].astype(np.uint8)
        Image.fromarray(label, mode='P').save(
            os.path.join(root, 'SegmentationClassAug', f'{name}.png'))
    for split in ('train_aug', 'val'):
        with open(os.path.join(root, 'ImageSets', 'Segmentation', f'{split}.txt'), 'w') as f:
            f.write(''.join(f'{name}\n' for name in ids))


def write_synthetic_cifar100(root: str, n: int, seed: int = 0) -> None:
    """``<root>/cifar-100-python/{train,test,meta}`` with ``n`` random images per split."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, 'cifar-100-python')
    os.makedirs(folder, exist_ok=True)
    for split in ('train', 'test'):
        entry = dict(data=rng.integers(0, 256, (n, 3 * 32 * 32), np.uint8),
                     fine_labels=rng.integers(0, 100, n).tolist())
        with open(os.path.join(folder, split), 'wb') as f:
            pickle.dump(entry, f)
    with open(os.path.join(folder, 'meta'), 'wb') as f:
        pickle.dump(dict(fine_label_names=[f'class{i}' for i in range(100)]), f)


def bench(loader_cfg: dict, workers: int, batches: int) -> dict:
    cfg = copy.deepcopy(loader_cfg)
    cfg.update(num_workers=workers, persistent_workers=workers > 0)
    loader = Runner.build_dataloader(cfg, seed=0)
    stream = (batch for _ in iter(int, 1) for batch in loader)   # epoch after epoch
    start = time.perf_counter()
    next(stream)
    first = time.perf_counter()
    images = sum(len(next(stream)['inputs']) for _ in range(batches))
    elapsed = time.perf_counter() - first
    return dict(workers=workers, batches=batches, images=images, seconds=round(elapsed, 3),
                startup_s=round(first - start, 3), images_per_s=round(images / elapsed, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--split', default='train', choices=['train', 'val', 'test'])
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--batches', type=int, default=20, help='timed batches per setting')
    parser.add_argument('--batch-size', type=int, help='override the config batch size')
    parser.add_argument('--data-root', help="override the dataset's data_root")
    parser.add_argument('--synthetic-voc', type=int, metavar='N',
                        help='write N synthetic VOC samples to a temp dir and use them')
    parser.add_argument('--synthetic-cifar', type=int, metavar='N',
                        help='write CIFAR-100 files with N random images to a temp dir and '
                        'use them')
    parser.add_argument('--out', help='write the results as JSON here')
    args = parser.parse_args()

    cfg = Config.fromfile(args.config)
    loader_cfg = cfg[f'{args.split}_dataloader'].to_dict()
    if args.batch_size:
        loader_cfg['batch_size'] = args.batch_size
    with tempfile.TemporaryDirectory() as tmp, \
            DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'kdbench')):
        if args.synthetic_voc:
            write_synthetic_voc(tmp, args.synthetic_voc)
            args.data_root = tmp
        if args.synthetic_cifar:
            write_synthetic_cifar100(tmp, args.synthetic_cifar)
            args.data_root = tmp
        if args.data_root:
            loader_cfg['dataset']['data_root'] = args.data_root
        results = []
        for workers in args.workers:
            results.append(bench(loader_cfg, workers, args.batches))
            print(f"workers={workers}: {results[-1]['images_per_s']:.1f} images/s "
                  f"({results[-1]['images']} images in {results[-1]['seconds']:.2f} s, "
                  f"start-up {results[-1]['startup_s']:.2f} s)", flush=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, split=args.split,
                           batch_size=loader_cfg['batch_size'], results=results), f, indent=2)


if __name__ == '__main__':
    main()
