# FitNet resnet32x4 -> shufflenetv2, CIFAR-100 (docs/reference.md, FitNet; MDistiller recipe):
# hint = feature index 2 (tap 'hint'), ConvReg conv+BN+ReLU, weight 100, CE 1.0.
_base_ = ['./_base_/resnet32x4_shufflenetv2_cifar100.py']
model = dict(methods=dict(fitnet=dict(type='FitNet', loss_weight=100.0)))
