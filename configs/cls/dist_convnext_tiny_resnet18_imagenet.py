# DIST ConvNeXt-T -> ResNet-18 on ImageNet (not a paper pair): DIST's ImageNet recipe
# (docs/reference.md, DIST): CE 1, tau 1, beta = gamma = 1, outer weight 2.
_base_ = ['./_base_/convnext_tiny_resnet18_imagenet.py']
model = dict(methods=dict(dist=dict(type='DIST', beta=1.0, gamma=1.0, temperature=1.0,
                                    loss_weight=2.0)))
