# CAT-KD resnet32x4 -> resnet8x4, CIFAR-100 (docs/reference.md §3 per-pair table: beta 15, r 2,
# normalize False, lr 0.05). Paper (CAT-KD, CVPR 2023, Table 2/3): 76.91 top-1.
# Bias-free student classifier and CE weight 1, as in the official code.
_base_ = ['./_base_/resnet32x4_resnet8x4_cifar100.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=15, resolution=2,
                                      normalize=False)))
