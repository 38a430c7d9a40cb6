# Demo CAT-KD with the CIFAR ResNet-family setting of docs/reference.md §3 (res56->res20:
# beta 0.7, r 2, not normalized), bias-free student classifier, CE weight 1.
_base_ = ['./_base_/resnet20_resnet8_digits.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=0.7, resolution=2, normalize=False)))
