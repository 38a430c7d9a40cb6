# DKD wrn_40_2 -> shufflenetv1, CIFAR-100 (docs/reference.md, DKD; official MDistiller recipe):
# CE 1.0, alpha 1.0, T 4, warm-up over 20 epochs.
# beta 8 for this pair (MDistiller configs/cifar100/dkd).
_base_ = ['./_base_/wrn_40_2_shufflenetv1_cifar100.py']
model = dict(methods=dict(dkd=dict(type='DKD', alpha=1.0, beta=8.0, temperature=4.0,
                                   warmup=20)))
