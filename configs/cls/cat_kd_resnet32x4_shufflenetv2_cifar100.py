# CAT-KD resnet32x4 -> shufflenetv2, CIFAR-100 (docs/reference.md §3 per-pair table: beta 600, r 4,
# normalize True, lr 0.01). Paper (CAT-KD, CVPR 2023, Table 2/3): 78.41 top-1.
# Bias-free student classifier and CE weight 1, as in the official code.
_base_ = ['./_base_/resnet32x4_shufflenetv2_cifar100.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=600, resolution=4,
                                      normalize=True)))
optim_wrapper = dict(optimizer=dict(lr=0.01))  # docs/reference.md §3 per-pair lr
