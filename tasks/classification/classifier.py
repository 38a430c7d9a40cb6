"""The classification task model."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch.nn.functional as F
from torch import Tensor

from kdbench.registry import MODELS
from kdbench.task import TaskModel, TaskSpec


@MODELS.register_module()
class ImageClassifier(TaskModel):
    """A classification network trained with cross-entropy, in mmengine's three modes.

    Args:
        net: config of a registered network (``dict(type='resnet8x4', num_classes=100)``)
            that maps ``[N, 3, H, W]`` to logits ``[N, K]`` and declares ``tap_points``.
        label_smoothing: cross-entropy label smoothing.
        classifier_bias: keep the bias of the linear classifier (tap ``classifier``);
            ``False`` removes it, as CAT-KD's official code trains its students.
        data_preprocessor: normalisation of the uint8 input batch.

    Modes: ``tensor`` -> logits ``[N, K]``; ``loss`` -> ``{'loss_cls'}``; ``predict`` ->
    one ``dict(pred_score=[K], gt_label=int)`` per sample. Its taps are the network's,
    seen from here (``net.<module>``).
    """

    def __init__(self, net: dict, label_smoothing: float = 0.0, classifier_bias: bool = True,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.net = MODELS.build(net)
        self.label_smoothing = label_smoothing
        self.tap_points = {name: point.under('net')
                           for name, point in self.net.tap_points.items()}
        if not classifier_bias:
            self.get_submodule(self.tap_points['classifier'].module).register_parameter(
                'bias', None)

    @property
    def num_classes(self) -> int:
        return self.tap_points['logits'].channels

    @property
    def task(self) -> TaskSpec:
        """Per-image class labels ``[N]`` for ``num_classes`` classes."""
        return TaskSpec('classification', dense=False, num_classes=self.num_classes)

    def forward(self, inputs: Tensor, data_samples: Optional[Dict[str, Tensor]] = None,
                mode: str = 'tensor'):
        if mode not in ('tensor', 'loss', 'predict'):
            raise ValueError(f"Unknown mode '{mode}'; use 'loss', 'predict' or 'tensor'.")
        logits = self.net(inputs)
        if mode == 'tensor':
            return logits
        labels = data_samples['label']
        if mode == 'loss':
            return {'loss_cls': F.cross_entropy(logits, labels,
                                                label_smoothing=self.label_smoothing)}
        return self.predictions(logits, labels)

    @staticmethod
    def predictions(logits: Tensor, labels: Tensor) -> List[dict]:
        """Per-sample outputs for the evaluator."""
        return [dict(pred_score=score, gt_label=label)
                for score, label in zip(logits.detach(), labels)]
