# DKD resnet34 -> resnet18, ImageNet (docs/reference.md, DKD; official MDistiller recipe):
# CE 1.0, alpha 1.0, beta 0.5, T 1, warm-up over 1 epoch. Schedule: kdbench's ImageNet base.
_base_ = ['./_base_/resnet34_resnet18_imagenet.py']
model = dict(methods=dict(dkd=dict(type='DKD', alpha=1.0, beta=0.5, temperature=1.0,
                                   warmup=1)))
