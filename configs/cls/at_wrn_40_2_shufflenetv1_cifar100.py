# AT wrn_40_2 -> shufflenetv1, CIFAR-100 (docs/reference.md §2: p=2, beta=1000, CE 1.0).
# Last backbone stage by default (docs/reference.md §2); the paper's every-stage setting
# (the stage taps both networks declare; maps of different sizes are pooled):
#   --cfg-options "model.methods.at.taps=[stage1,stage2,stage3]"
# Paper: 73.32 top-1 (RepDistiller, all stages; docs/reference.md §6).
_base_ = ['./_base_/wrn_40_2_shufflenetv1_cifar100.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
