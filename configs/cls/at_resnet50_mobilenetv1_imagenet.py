# AT ResNet-50 -> MobileNetV1 on ImageNet, last stage (layer4 / the last 1024-ch block,
# both 7x7), p=2, CE 1.0. No published ImageNet beta; kdbench uses the paper's CIFAR
# beta=1000 (docs/reference.md §2), as at_resnet34_resnet18_imagenet.py. Every stage:
#   --cfg-options "model.methods.at.taps=[stage1,stage2,stage3,stage4]"
_base_ = ['./_base_/resnet50_mobilenetv1_imagenet.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
