"""Per-image outputs of a segmentation evaluation (``tools/test.py --out/--show-dir``):
per-image IoU and pixel accuracy records, and image | ground truth | prediction pictures
in the Pascal VOC palette."""
from __future__ import annotations

import numpy as np
from torch import Tensor

from kdbench.evaluation.functional import confusion_matrix, iou_from_confusion
from kdbench.evaluation.samples import SampleWriter
from kdbench.registry import METRICS

from .transforms import IGNORE_INDEX


def label_palette() -> np.ndarray:
    """uint8 ``[256, 3]``: the Pascal VOC devkit colour map (``labelcolormap``: the bits of
    the index spread over R, G, B from the most significant bit down), so index 0 is
    black and 255 (ignore) is VOC's cream border colour (224, 224, 192). COCO-Stuff's
    train ids use the same map: distinct colours for 0..170 (the official COCO-Stuff
    helper's map colours only the stuff classes)."""
    index = np.arange(256)
    palette = np.zeros((256, 3), dtype=np.uint8)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= (((index >> (3 * bit + channel)) & 1) << (7 - bit)).astype(
                np.uint8)
    return palette


def colourise(label: np.ndarray) -> np.ndarray:
    """Class ids ``[H, W]`` (0..255) -> uint8 RGB ``[H, W, 3]`` in :func:`label_palette`."""
    return label_palette()[np.asarray(label, dtype=np.uint8)]


@METRICS.register_module()
class SegSampleWriter(SampleWriter):
    """Per image: ``pixel_acc`` and ``mIoU`` (percent, over the classes present in the
    ground truth or the prediction, 255 pixels not counted) and ``iou``
    ``{class name: IoU}`` for those classes; pictures ``<id>.png``: image | ground truth
    | prediction side by side (ignored pixels in VOC's border colour)."""

    def __init__(self, ignore_index: int = IGNORE_INDEX, **kwargs):
        super().__init__(**kwargs)
        self.ignore_index = ignore_index

    def record(self, output: dict, inputs: Tensor, index: int) -> dict:
        k = output['num_classes']
        cm = confusion_matrix(output['pred_sem_seg'].cpu(), output['gt_sem_seg'].cpu(), k,
                              self.ignore_index)
        iou, miou = iou_from_confusion(cm)
        names = (self.dataset_meta or {}).get('classes') or [str(c) for c in range(k)]
        counted = int(cm.sum())
        return dict(pixel_acc=100 * float(cm.diagonal().sum()) / counted if counted else None,
                    mIoU=100 * miou if counted else None,
                    iou={str(names[c]): 100 * float(v) for c, v in enumerate(iou.tolist())
                         if v == v})

    def draw(self, output: dict, inputs: Tensor, index: int) -> np.ndarray:
        image = inputs.cpu().numpy().transpose(1, 2, 0)
        h, w = output['gt_sem_seg'].shape[-2:]
        gt = output['gt_sem_seg'].cpu().numpy()
        pred = output['pred_sem_seg'].cpu().numpy()
        return np.concatenate([image[:h, :w], colourise(gt), colourise(pred)], axis=1)
