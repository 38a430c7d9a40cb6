# CAT ablations (CAT-KD §4.2): a trained resnet32x4 produces the CAMs, a resnet32x4
# student learns from them alone (no CE, no labels: student_loss_weight=0). Leaves
# add a bias-free student classifier and the CAT method.
_base_ = ['../resnet32x4_cifar100.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='ImageClassifier', net=dict(type='resnet32x4', num_classes=100)),
    teacher_ckpt='checkpoints/cifar100/resnet32x4.pth',
    student_loss_weight=0.0,
    methods=dict())
