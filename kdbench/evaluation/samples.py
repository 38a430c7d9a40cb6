"""Per-sample outputs of an evaluation (``tools/test.py --out FILE --show-dir DIR``).

A :class:`SampleWriter` is an extra metric beside the config's evaluator: it sees every
batch the evaluator sees, keeps one small record per sample (the task's subclass says
what: top-k classes, per-image IoU, ...) and, with ``show_dir``, writes one picture per
sample. Records are collected from every process and written once, sorted by the
sample's index in the test set, with the dataset's ``ids`` as names when it has them.

Sample indices follow mmengine's ``DefaultSampler`` without shuffling: process ``r`` of
``W`` sees indices ``r, r + W, r + 2W, ...`` (the sampler's padding repeats indices from
the start: they are kept while collecting, as mmengine's collection interleaves equal-length
per-process lists, and dropped when writing).
"""
from __future__ import annotations

import json
import os
import pickle
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.dataset import DefaultSampler
from mmengine.dist import get_dist_info
from mmengine.evaluator import BaseMetric
from PIL import Image

OUT_FORMATS = ('.json', '.pkl')


def check_out_file(path: str) -> str:
    """``path`` if its suffix is one the writer knows, else a ValueError naming it."""
    if os.path.splitext(path)[1] not in OUT_FORMATS:
        raise ValueError(f"--out '{path}': use a {' or '.join(OUT_FORMATS)} file name.")
    return path


class SampleWriter(BaseMetric):
    """Base of the task writers: index bookkeeping, collection and file output.

    Subclasses implement :meth:`record` (a JSON-serialisable dict for one sample) and
    :meth:`draw` (uint8 ``[H, W, 3]`` RGB picture of one sample). With ``grid`` set, the
    pictures (all of one size) are tiled ``grid`` x ``grid`` per page,
    ``page_<rank>_<n>.png``, instead of one ``<name>.png`` per sample.

    Args:
        out_file: ``.json`` or ``.pkl`` file for the records (``None``: none written).
        show_dir: folder for one ``<name>.png`` per sample (``None``: no pictures).
    """

    default_prefix = 'samples'
    grid: Optional[int] = None

    def __init__(self, out_file: Optional[str] = None, show_dir: Optional[str] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.out_file = check_out_file(out_file) if out_file else None
        self.show_dir = show_dir
        self.names: Optional[Sequence[str]] = None
        self.size: Optional[int] = None
        self._seen = 0
        self._tiles: List[np.ndarray] = []
        self._pages = 0

    def bind_dataloader(self, dataloader) -> None:
        """Take the sample names and count from the test loader; its sampler must visit
        the samples in order (the index arithmetic above)."""
        sampler = dataloader.sampler
        if not isinstance(sampler, DefaultSampler) or sampler.shuffle:
            raise ValueError('--out/--show-dir need the test loader to use DefaultSampler '
                             f'with shuffle=False (got {type(sampler).__name__}); set '
                             'test_dataloader.sampler=dict(type="DefaultSampler", '
                             'shuffle=False).')
        self.names = getattr(dataloader.dataset, 'ids', None)
        self.size = len(dataloader.dataset)
        if self.show_dir:
            os.makedirs(self.show_dir, exist_ok=True)

    def name(self, index: int) -> str:
        return str(self.names[index]) if self.names is not None else f'{index:06d}'

    def record(self, output: dict, inputs, index: int) -> dict:
        raise NotImplementedError

    def draw(self, output: dict, inputs, index: int) -> np.ndarray:
        raise NotImplementedError

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        if self.size is None:
            raise RuntimeError(f'{type(self).__name__} was not bound to the test loader; '
                               'use it through tools/test.py (kdbench.apis.evaluate).')
        rank, world = get_dist_info()
        for i, output in enumerate(data_samples):
            index = rank + world * self._seen
            self._seen += 1
            padding, index = index >= self.size, index % self.size
            inputs = data_batch['inputs'][i]
            if self.show_dir and not padding:
                self._show(self.draw(output, inputs, index), index)
            self.results.append(dict(index=index, name=self.name(index),
                                     **self.record(output, inputs, index)))

    def _show(self, picture: np.ndarray, index: int) -> None:
        if self.grid is None:
            Image.fromarray(picture).save(os.path.join(self.show_dir, f'{self.name(index)}.png'))
            return
        self._tiles.append(picture)
        if len(self._tiles) == self.grid ** 2:
            self._flush_page()

    def _flush_page(self) -> None:
        if not self._tiles:
            return
        h, w, _ = self._tiles[0].shape
        rows = -(-len(self._tiles) // self.grid)
        page = np.full((rows * h, min(len(self._tiles), self.grid) * w, 3), 255, np.uint8)
        for k, tile in enumerate(self._tiles):
            r, c = divmod(k, self.grid)
            page[r * h:(r + 1) * h, c * w:(c + 1) * w] = tile
        Image.fromarray(page).save(os.path.join(
            self.show_dir, f'page_{get_dist_info()[0]}_{self._pages:04d}.png'))
        self._tiles, self._pages = [], self._pages + 1

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        records = sorted({r['index']: r for r in results}.values(), key=lambda r: r['index'])
        if self.out_file:
            os.makedirs(os.path.dirname(os.path.abspath(self.out_file)), exist_ok=True)
            if self.out_file.endswith('.json'):
                with open(self.out_file, 'w') as f:
                    json.dump(records, f, indent=1)
            else:
                with open(self.out_file, 'wb') as f:
                    pickle.dump(records, f)
        return {}

    def evaluate(self, size: int) -> dict:
        if self.show_dir and self.grid is not None:
            self._flush_page()
        self._seen = self._pages = 0
        return super().evaluate(size)
