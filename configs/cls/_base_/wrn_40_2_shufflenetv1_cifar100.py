# Pair wrn_40_2 -> shufflenetv1 on cifar100: the student baseline plus the teacher.
# Leaf configs add `methods` (and the recipe's CE weight).
_base_ = ['../shufflenetv1_cifar100.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='ImageClassifier', net=dict(type='wrn_40_2', num_classes=100)),
    teacher_ckpt='checkpoints/cifar100/wrn_40_2.pth',
    methods=dict())
