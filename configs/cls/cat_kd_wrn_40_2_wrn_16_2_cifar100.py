# CAT-KD wrn_40_2 -> wrn_16_2, CIFAR-100 (docs/reference.md §3 per-pair table: beta 12, r 2,
# normalize False, lr 0.05). Paper (CAT-KD, CVPR 2023, Table 2/3): 75.60 top-1.
# Bias-free student classifier and CE weight 1, as in the official code.
_base_ = ['./_base_/wrn_40_2_wrn_16_2_cifar100.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=12, resolution=2,
                                      normalize=False)))
