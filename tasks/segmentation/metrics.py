"""mIoU from an accumulated confusion matrix, exact under multi-process evaluation."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from kdbench.data_contract import KDTestMetric
from kdbench.evaluation.functional import confusion_matrix, iou_from_confusion
from kdbench.registry import METRICS


@METRICS.register_module()
class IoUMetric(KDTestMetric, BaseMetric):
    """``mIoU``, ``mAcc`` (mean class recall) and ``aAcc`` (pixel accuracy), in percent.

    Each image's confusion matrix is kept in sparse form (its non-zero cells), so
    mmengine's cross-process collection, which drops the samples a distributed sampler
    padded, gives exactly the single-process figures. The per-class IoU table goes to
    the log.

    Args:
        num_classes: ``K``; default: the number of the dataset's ``classes``.
        ignore_index: label of pixels not counted.
    """
    default_prefix = ''      # keys stay 'mIoU', 'mAcc', 'aAcc' (what configs and suites name)
    sample_writer = 'SegSampleWriter'     # per-image outputs of tools/test.py --out/--show-dir

    def __init__(self, num_classes: Optional[int] = None, ignore_index: int = 255,
                 **kwargs):
        super().__init__(**kwargs)
        self._num_classes, self.ignore_index = num_classes, ignore_index

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            self._num_classes = len(self.dataset_meta['classes'])
        return self._num_classes

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if sample['num_classes'] != self.num_classes:
                raise ValueError(f"The model predicts {sample['num_classes']} classes but "
                                 f'the dataset has {self.num_classes}; set num_classes of the '
                                 'model config to the dataset\'s.')
            cm = confusion_matrix(sample['pred_sem_seg'].cpu(), sample['gt_sem_seg'].cpu(),
                                  self.num_classes, self.ignore_index).flatten()
            cells = cm.nonzero().flatten()
            self.results.append((cells, cm[cells]))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        k = self.num_classes
        cm = torch.zeros(k * k, dtype=torch.int64)
        for cells, counts in results:
            cm.index_add_(0, cells, counts)
        cm = cm.reshape(k, k)
        iou, miou = iou_from_confusion(cm)
        recall = cm.diagonal().double() / cm.sum(1).double()
        self._log_table(iou, recall)
        return {'mIoU': 100 * miou, 'mAcc': 100 * recall.nanmean().item(),
                'aAcc': 100 * (cm.diagonal().sum() / cm.sum().clamp(min=1)).item()}

    def _log_table(self, iou: torch.Tensor, recall: torch.Tensor) -> None:
        names = (self.dataset_meta or {}).get('classes') or [str(i) for i in range(len(iou))]
        width = max(len(str(n)) for n in names)
        lines = [f'{"class":<{width}}    IoU    Acc']
        lines += [f'{str(n):<{width}} {100 * i:6.2f} {100 * r:6.2f}'
                  for n, i, r in zip(names, iou.tolist(), recall.tolist())]
        print_log('per-class results:\n' + '\n'.join(lines), logger='current')
