# CAT only (no CE): docs/reference.md §3 CAT-only defaults beta 50, r 2, normalized; bias-free
# student classifier as in the official code.
_base_ = ['./_base_/resnet32x4_resnet32x4_cifar100.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat=dict(type='CATKD', beta=50.0, resolution=2, normalize=True)))
