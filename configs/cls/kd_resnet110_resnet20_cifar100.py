# KD resnet110 -> resnet20, CIFAR-100 recipe (docs/reference.md §1: T=4, CE 0.1, KD 0.9).
# docs/reference.md §6 has no KD number for this pair (it is a TaT-paper pair).
_base_ = ['./_base_/resnet110_resnet20_cifar100.py']
model = dict(student_loss_weight=0.1,
             methods=dict(kd=dict(type='KD', temperature=4.0, loss_weight=0.9)))
