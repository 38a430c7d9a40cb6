# Pair resnet32x4 -> shufflenetv2 on cifar100: the student baseline plus the teacher.
# Leaf configs add `methods` (and the recipe's CE weight).
_base_ = ['../shufflenetv2_cifar100.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='ImageClassifier', net=dict(type='resnet32x4', num_classes=100)),
    teacher_ckpt='checkpoints/cifar100/resnet32x4.pth',
    methods=dict())
