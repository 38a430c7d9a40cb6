"""Print the recipe card of configs: what a run will do, read from the built objects.

    python tools/recipe.py CONFIG [CONFIG ...] [--gpus N] [--cfg-options k=v ...]
    python tools/recipe.py --all --markdown docs/recipes.md     # regenerate the docs table

A card lists the data and splits, the batch per process and the effective batch for N
processes, epochs and iterations, every optimizer parameter group (modules, lr, weight
decay, momentum), the lr schedule, the loss terms with their weights and arguments, the
taps and their shapes, the weight files and the evaluation. No data or checkpoint is read.
"""
import argparse

from mmengine.config import DictAction

from kdbench.apis.recipe import (build_card, format_card, markdown_table, replace_table,
                                 shipped_configs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*', help='config files')
    parser.add_argument('--all', action='store_true', help='every config under configs/')
    parser.add_argument('--gpus', type=int, default=1,
                        help='processes the run uses (effective batch, iterations)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, as tools/train.py does')
    parser.add_argument('--markdown', metavar='FILE',
                        help='write the table of the configs into FILE between its markers')
    args = parser.parse_args()
    if not args.configs and not args.all:
        parser.error('name CONFIG files or --all')
    if args.gpus < 1:
        parser.error('--gpus must be >= 1')
    return args


def main() -> None:
    args = parse_args()
    paths = shipped_configs() if args.all else args.configs
    if args.markdown:
        with open(args.markdown) as f:
            text = f.read()
        with open(args.markdown, 'w') as f:
            f.write(replace_table(text, markdown_table(paths)))
        print(f'{args.markdown}: {len(paths)} configs')
        return
    for path in paths:
        print(format_card(build_card(path, args.cfg_options, args.gpus)) + '\n')


if __name__ == '__main__':
    main()
