# Pair ResNet-50 -> MobileNetV1 on ImageNet. The teacher is torchvision's ResNet-50
# (IMAGENET1K_V1 file, torchvision format; kdbench maps its keys).
_base_ = ['../mobilenetv1_imagenet.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='ImageClassifier', net=dict(type='tv_resnet50', num_classes=1000)),
    teacher_ckpt='checkpoints/resnet50-0676ba61.pth',
    methods=dict())
