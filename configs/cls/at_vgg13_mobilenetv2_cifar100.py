# AT vgg13 -> mobilenetv2_cifar, CIFAR-100 (docs/reference.md §2: p=2, beta=1000, CE 1.0).
# Last backbone stage by default (docs/reference.md §2); the paper's every-stage setting
# (the stage taps both networks declare; maps of different sizes are pooled):
#   --cfg-options "model.methods.at.taps=[stage1,stage2,stage3,stage4]"
# Paper: 59.40 top-1 (RepDistiller, all stages; docs/reference.md §6).
_base_ = ['./_base_/vgg13_mobilenetv2_cifar100.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
