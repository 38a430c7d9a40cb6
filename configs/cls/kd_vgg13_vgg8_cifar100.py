# KD vgg13 -> vgg8, CIFAR-100 recipe (docs/reference.md §1: T=4, CE 0.1, KD 0.9).
# Paper: 72.98 top-1 (RepDistiller / MDistiller, docs/reference.md §6).
_base_ = ['./_base_/vgg13_vgg8_cifar100.py']
model = dict(student_loss_weight=0.1,
             methods=dict(kd=dict(type='KD', temperature=4.0, loss_weight=0.9)))
