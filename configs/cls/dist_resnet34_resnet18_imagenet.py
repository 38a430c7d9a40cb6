# DIST resnet34 -> resnet18, ImageNet (docs/reference.md, DIST; official recipe):
# CE 1, tau 1, beta = gamma = 1, outer weight 2. Schedule: kdbench's ImageNet base.
_base_ = ['./_base_/resnet34_resnet18_imagenet.py']
model = dict(methods=dict(dist=dict(type='DIST', beta=1.0, gamma=1.0, temperature=1.0,
                                    loss_weight=2.0)))
