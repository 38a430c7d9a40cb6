"""Check every sample of a config's datasets before a long run: missing, unreadable or
invalid files (wrong label size, labels out of range) are listed, file by file.

    python tools/check_dataset.py CONFIG [--split train|val|test|all] [--cfg-options k=v ...]
                                         [--max-errors N] [--workers N]

Builds ``<split>_dataloader.dataset`` of the config and calls the dataset's
``check_sample(i)`` for every index (files are decoded and checked, the pipeline is not run;
a dataset without ``check_sample`` is indexed instead; the dataset contract,
kdbench/data_contract.py). Progress goes to stderr, the summary to stdout; nothing is
written. Exit status: 0 when every sample is good, 1 when
problems were found (or a dataset cannot be built), 2 for a usage error.
"""
import argparse
import multiprocessing
import sys
import time
from typing import List, Optional, Sequence, Tuple

from mmengine.config import DictAction
from mmengine.registry import DefaultScope

from kdbench.apis import load_config
from kdbench.data_contract import checks_samples, sample_checker
from kdbench.registry import DATASETS

SPLITS = ('train', 'val', 'test')
Problem = Tuple[str, int, str, str]      # split, index, sample name, message

_DATASET = None                          # the dataset a worker process checks


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--split', choices=[*SPLITS, 'all'], default='all',
                        help="which <split>_dataloader.dataset to check (default: all)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override config keys, e.g. '
                        'train_dataloader.dataset.data_root=/data/VOC2012')
    parser.add_argument('--max-errors', type=int, default=20,
                        help='problems listed in the summary (all are counted; default 20)')
    parser.add_argument('--workers', type=int, default=0,
                        help='check in this many processes (default 0: in this process)')
    args = parser.parse_args(argv)
    if args.max_errors < 0 or args.workers < 0:
        parser.error('--max-errors and --workers must be >= 0')
    return args


def sample_name(dataset, index: int) -> str:
    """A readable name of sample ``index``: its id or file when the dataset has them."""
    if hasattr(dataset, 'ids'):
        return str(dataset.ids[index])
    if hasattr(dataset, 'samples'):
        return str(dataset.samples[index][0])
    return f'#{index}'


def _check_one(index: int) -> Tuple[int, Optional[str]]:
    try:
        sample_checker(_DATASET)(index)
    except Exception as err:  # every failure is a finding, reported with its type
        return index, f'{type(err).__name__}: {err}'
    return index, None


def _set_dataset(dataset) -> None:
    global _DATASET
    _DATASET = dataset


class Progress:
    """``[split] done/total (pct) problems N`` on stderr: one rewritten line on a
    terminal, else a line every 10%."""

    def __init__(self, split: str, total: int):
        self.split, self.total, self.tty = split, total, sys.stderr.isatty()
        self.last_time, self.last_tenth = 0.0, 0

    def update(self, done: int, problems: int) -> None:
        now, tenth = time.monotonic(), done * 10 // max(self.total, 1)
        if self.tty and (now - self.last_time > 0.2 or done == self.total):
            self.last_time = now
            end = '\n' if done == self.total else ''
            print(f'\r{self._line(done, problems)}', end=end, file=sys.stderr, flush=True)
        elif not self.tty and tenth > self.last_tenth:
            self.last_tenth = tenth
            print(self._line(done, problems), file=sys.stderr, flush=True)

    def _line(self, done: int, problems: int) -> str:
        return (f'[{self.split}] {done}/{self.total} ({100 * done / max(self.total, 1):.0f}%) '
                f'problems {problems}')


def check_dataset(split: str, dataset, workers: int = 0) -> List[Problem]:
    """Check every sample of ``dataset``; returns its problems in index order."""
    total = len(dataset)
    progress = Progress(split, total)
    found: List[Tuple[int, str]] = []
    progress.update(0, 0)
    if workers > 0 and total > 1:
        context = multiprocessing.get_context('fork')     # the dataset is inherited, not pickled
        with context.Pool(workers, initializer=_set_dataset, initargs=(dataset,)) as pool:
            chunk = max(1, min(64, total // (workers * 8)))
            for done, (index, error) in enumerate(
                    pool.imap_unordered(_check_one, range(total), chunksize=chunk), 1):
                if error:
                    found.append((index, error))
                progress.update(done, len(found))
    else:
        _set_dataset(dataset)
        for index in range(total):
            error = _check_one(index)[1]
            if error:
                found.append((index, error))
            progress.update(index + 1, len(found))
    return [(split, index, sample_name(dataset, index), error) for index, error in sorted(found)]


def _kind(message: str) -> str:
    if message.startswith('FileNotFoundError'):
        return 'missing'
    if 'Cannot read' in message:
        return 'unreadable'
    return 'invalid'


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    scope = cfg.get('default_scope', 'kdbench')
    splits = SPLITS if args.split == 'all' else (args.split,)
    problems: List[Problem] = []
    checked: List[Tuple[str, object]] = []          # (split, dataset config) already done
    lines = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or not loader.get('dataset'):
            if args.split != 'all':
                print(f"error: config has no {split}_dataloader.dataset", file=sys.stderr)
                return 2
            lines.append(f'{split}: no {split}_dataloader in the config, not checked')
            continue
        same = next((s for s, c in checked if c == loader.dataset), None)
        if same:
            lines.append(f'{split}: the same dataset as {same}, not checked again')
            continue
        checked.append((split, loader.dataset))
        try:
            with DefaultScope.overwrite_default_scope(scope):
                dataset = DATASETS.build(loader.dataset.copy())
        except Exception as err:
            problems.append((split, -1, '<dataset>', f'{type(err).__name__}: {err}'))
            lines.append(f'{split}: cannot build {loader.dataset.get("type")} (see below)')
            continue
        how = '' if checks_samples(dataset) else ' (no check_sample: loaded through the pipeline)'
        found = check_dataset(split, dataset, args.workers)
        problems += found
        kinds = {}
        for *_, message in found:
            kinds[_kind(message)] = kinds.get(_kind(message), 0) + 1
        detail = ', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))
        lines.append(f'{split}: {type(dataset).__name__}, {len(dataset)} samples, '
                     f'{len(found)} with problems{f" ({detail})" if detail else ""}{how}')

    print(f'Dataset check of {args.config}')
    for line in lines:
        print(f'  {line}')
    if not problems:
        print('No problems found.')
        return 0
    shown = problems[:args.max_errors]
    print(f'{len(problems)} problems'
          + (f', the first {len(shown)}:' if len(shown) < len(problems) else ':'))
    for split, index, name, message in shown:
        where = f'[{split}]' if index < 0 else f'[{split}] #{index} {name}'
        print(f'  {where}: {message}')
    return 1


if __name__ == '__main__':
    sys.exit(main())
