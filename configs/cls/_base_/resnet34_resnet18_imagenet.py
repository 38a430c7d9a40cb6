# Pair ResNet-34 -> ResNet-18 on ImageNet. The teacher is torchvision's ResNet-34
# (IMAGENET1K_V1 file, torchvision format; kdbench maps its keys).
_base_ = ['../resnet18_imagenet.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='ImageClassifier', net=dict(type='tv_resnet34', num_classes=1000)),
    teacher_ckpt='checkpoints/resnet34-b627a593.pth',
    methods=dict())
