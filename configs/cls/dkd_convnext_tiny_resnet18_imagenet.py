# DKD ConvNeXt-T -> ResNet-18 on ImageNet (not a paper pair): the ResNet-34 -> ResNet-18 recipe
# (docs/reference.md, DKD): CE 1.0, alpha 1.0, beta 0.5, T 1, warm-up over 1 epoch.
_base_ = ['./_base_/convnext_tiny_resnet18_imagenet.py']
model = dict(methods=dict(dkd=dict(type='DKD', alpha=1.0, beta=0.5, temperature=1.0,
                                   warmup=1)))
