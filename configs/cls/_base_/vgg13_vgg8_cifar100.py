# Pair vgg13 -> vgg8 on cifar100: the student baseline plus the teacher.
# Leaf configs add `methods` (and the recipe's CE weight).
_base_ = ['../vgg8_cifar100.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='ImageClassifier', net=dict(type='vgg13', num_classes=100)),
    teacher_ckpt='checkpoints/cifar100/vgg13.pth',
    methods=dict())
