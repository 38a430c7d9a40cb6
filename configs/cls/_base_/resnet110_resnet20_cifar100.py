# Pair resnet110 -> resnet20 on cifar100: the student baseline plus the teacher.
# Leaf configs add `methods` (and the recipe's CE weight).
_base_ = ['../resnet20_cifar100.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='ImageClassifier', net=dict(type='resnet110', num_classes=100)),
    teacher_ckpt='checkpoints/cifar100/resnet110.pth',
    methods=dict())
