# CAT-KD wrn_40_2 -> shufflenetv1, CIFAR-100 (docs/reference.md §3 per-pair table: beta 80, r 4,
# normalize True, lr 0.01). Paper (CAT-KD, CVPR 2023, Table 2/3): 77.35 top-1.
# Bias-free student classifier and CE weight 1, as in the official code.
_base_ = ['./_base_/wrn_40_2_shufflenetv1_cifar100.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=80, resolution=4,
                                      normalize=True)))
optim_wrapper = dict(optimizer=dict(lr=0.01))  # docs/reference.md §3 per-pair lr
