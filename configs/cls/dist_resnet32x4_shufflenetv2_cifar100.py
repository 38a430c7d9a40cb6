# DIST resnet32x4 -> shufflenetv2, CIFAR-100 (docs/reference.md, DIST; official recipe):
# CE 1, tau 4, beta = gamma = 1, outer weight 2.
_base_ = ['./_base_/resnet32x4_shufflenetv2_cifar100.py']
model = dict(methods=dict(dist=dict(type='DIST', beta=1.0, gamma=1.0, temperature=4.0,
                                    loss_weight=2.0)))
