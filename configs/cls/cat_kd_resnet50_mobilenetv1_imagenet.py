# CAT-KD ResNet-50 -> MobileNetV1 on ImageNet (docs/reference.md §3: beta 10, r 2, normalized).
# Paper (CAT-KD Table 8): 72.24 top-1 / 91.13 top-5.
_base_ = ['./_base_/resnet50_mobilenetv1_imagenet.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=10.0, resolution=2, normalize=True)))
