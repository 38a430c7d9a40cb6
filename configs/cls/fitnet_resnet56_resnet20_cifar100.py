# FitNet resnet56 -> resnet20, CIFAR-100 (docs/reference.md, FitNet; MDistiller recipe):
# hint = feature index 2 (tap 'hint'), ConvReg conv+BN+ReLU, weight 100, CE 1.0.
_base_ = ['./_base_/resnet56_resnet20_cifar100.py']
model = dict(methods=dict(fitnet=dict(type='FitNet', loss_weight=100.0)))
