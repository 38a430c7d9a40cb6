"""Check (or first download) CIFAR-100 where the configs read it.

    python tools/prepare_cifar100.py [--root data/cifar100] [--download [--url URL]]
                                     [--any-size]

The layout is torchvision's ``CIFAR100(root, download=True)`` folder:
``<root>/cifar-100-python/{train,test,meta}``. Offline, put the official
``cifar-100-python.tar.gz`` in ROOT and use --download: it is checked and extracted.
"""
import argparse
import sys

from tasks.classification.prepare import (DownloadError, check_cifar100, download_cifar100,
                                          modified_files)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--root', default='data/cifar100',
                        help="the configs' data_root (holds cifar-100-python/)")
    parser.add_argument('--download', action='store_true',
                        help='download and extract the official archive (torchvision) first')
    parser.add_argument('--url', help="where --download fetches the archive (default: "
                        "torchvision's address of the official release)")
    parser.add_argument('--any-size', action='store_true',
                        help='accept splits of other sizes than 50000 / 10000')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        if args.download:
            download_cifar100(args.root, args.url)
        sizes = check_cifar100(args.root, full=not args.any_size)
    except (DownloadError, FileNotFoundError, ValueError) as err:
        sys.exit(f'prepare_cifar100: {err}')
    print(f"CIFAR-100 at {args.root}: train {sizes['train']}, test {sizes['test']} images.")
    for path in modified_files(args.root):
        print(f'warning: {path} differs from the official release (md5).')


if __name__ == '__main__':
    main()
