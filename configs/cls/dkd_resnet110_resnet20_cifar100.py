# DKD resnet110 -> resnet20, CIFAR-100 (docs/reference.md, DKD; official MDistiller recipe):
# CE 1.0, alpha 1.0, T 4, warm-up over 20 epochs.
# No published beta for this pair (a TaT-paper pair): kdbench takes 2.0, the value
# of the other ResNet -> ResNet pairs (resnet56 -> resnet20, resnet110 -> resnet32).
_base_ = ['./_base_/resnet110_resnet20_cifar100.py']
model = dict(methods=dict(dkd=dict(type='DKD', alpha=1.0, beta=2.0, temperature=4.0,
                                   warmup=20)))
