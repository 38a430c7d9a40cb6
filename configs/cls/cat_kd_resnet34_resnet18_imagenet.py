# CAT-KD ResNet-34 -> ResNet-18 on ImageNet (docs/reference.md §3: beta 0.5, r 2 as in the paper;
# the official config's r=4 is a known mistake). Paper (CAT-KD Table 7): 71.26 / 90.45.
_base_ = ['./_base_/resnet34_resnet18_imagenet.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=0.5, resolution=2, normalize=False)))
