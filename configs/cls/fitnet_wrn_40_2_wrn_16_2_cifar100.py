# FitNet wrn_40_2 -> wrn_16_2, CIFAR-100 (docs/reference.md, FitNet; MDistiller recipe):
# hint = feature index 2 (tap 'hint'), ConvReg conv+BN+ReLU, weight 100, CE 1.0.
_base_ = ['./_base_/wrn_40_2_wrn_16_2_cifar100.py']
model = dict(methods=dict(fitnet=dict(type='FitNet', loss_weight=100.0)))
