# AT ResNet-34 -> ResNet-18 on ImageNet, last stage (layer4), p=2, CE 1.0.
# No published ImageNet beta; kdbench uses the paper's CIFAR beta=1000 (docs/reference.md §2).
_base_ = ['./_base_/resnet34_resnet18_imagenet.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
