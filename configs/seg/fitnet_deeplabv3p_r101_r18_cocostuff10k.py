# FitNet on segmentation: kdbench's setting (no official recipe; docs/reference.md, FitNet):
# hint = the last encoder stage (both stride 16), 1x1 conv + BN + ReLU regressor 512 -> 2048,
# weight 100 (the CIFAR recipe's), CE 1. Unverified.
_base_ = ['./_base_/deeplabv3p_r101_r18_cocostuff10k.py']
model = dict(methods=dict(fitnet=dict(type='FitNet', loss_weight=100.0, taps=('last_stage',))))
