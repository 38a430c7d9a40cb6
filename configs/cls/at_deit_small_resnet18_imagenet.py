# AT DeiT-S -> ResNet-18 on ImageNet (not a paper pair), last stage, p=2, CE 1.0, beta 1000
# (docs/reference.md §2). Maps of different sizes: the larger is average-pooled to the
# smaller (docs/models.md).
_base_ = ['./_base_/deit_small_resnet18_imagenet.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
