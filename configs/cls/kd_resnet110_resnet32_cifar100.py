# KD resnet110 -> resnet32, CIFAR-100 recipe (docs/reference.md §1: T=4, CE 0.1, KD 0.9).
# Paper: 73.08 top-1 (RepDistiller / MDistiller, docs/reference.md §6).
_base_ = ['./_base_/resnet110_resnet32_cifar100.py']
model = dict(student_loss_weight=0.1,
             methods=dict(kd=dict(type='KD', temperature=4.0, loss_weight=0.9)))
