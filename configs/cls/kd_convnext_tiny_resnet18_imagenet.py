# KD ConvNeXt-T -> ResNet-18 on ImageNet (not a paper pair): the ImageNet KD recipe of
# docs/reference.md §1 (T=1, CE 0.5, KD 0.5), as for ResNet-34 -> ResNet-18.
_base_ = ['./_base_/convnext_tiny_resnet18_imagenet.py']
model = dict(student_loss_weight=0.5,
             methods=dict(kd=dict(type='KD', temperature=1.0, loss_weight=0.5)))
