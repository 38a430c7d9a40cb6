# AT resnet32x4 -> resnet8x4, CIFAR-100 (docs/reference.md §2: p=2, beta=1000, CE 1.0).
# Last backbone stage by default (docs/reference.md §2); the paper's every-stage setting:
#   --cfg-options "model.methods.at.taps=[stage1,stage2,stage3]"
# Paper: 73.44 top-1 (RepDistiller, all stages; docs/reference.md §6).
_base_ = ['./_base_/resnet32x4_resnet8x4_cifar100.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
