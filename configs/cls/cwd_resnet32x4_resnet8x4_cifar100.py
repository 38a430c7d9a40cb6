# CWD on classification: kdbench's setting (no official recipe; docs/reference.md, CWD):
# the last-stage features (both 256 ch, 8x8), tau 4, weight 3 (the official Cityscapes
# defaults), CE 1. Used by the overhead benchmark; unverified for accuracy.
_base_ = ['./_base_/resnet32x4_resnet8x4_cifar100.py']
model = dict(methods=dict(cwd=dict(type='CWD', temperature=4.0, loss_weight=3.0,
                                   taps=('last_stage',))))
