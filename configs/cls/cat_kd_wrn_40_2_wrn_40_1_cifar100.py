# CAT-KD wrn_40_2 -> wrn_40_1, CIFAR-100 (docs/reference.md §3 per-pair table: beta 1.5, r 2,
# normalize False, lr 0.05). Paper (CAT-KD, CVPR 2023, Table 2/3): 74.82 top-1.
# Bias-free student classifier and CE weight 1, as in the official code.
_base_ = ['./_base_/wrn_40_2_wrn_40_1_cifar100.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=1.5, resolution=2,
                                      normalize=False)))
