# CAT-KD resnet50_cifar -> mobilenetv2_cifar, CIFAR-100 (docs/reference.md §3 table: beta 40, r 2,
# normalize True, lr 0.01). Paper (CAT-KD, CVPR 2023, Table 2/3): 71.36 top-1.
# Bias-free student classifier and CE weight 1, as in the official code.
_base_ = ['./_base_/resnet50_mobilenetv2_cifar100.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=40, resolution=2,
                                      normalize=True)))
optim_wrapper = dict(optimizer=dict(lr=0.01))  # docs/reference.md §3 per-pair lr
