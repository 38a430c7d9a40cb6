# Student baseline: CIFAR mobilenetv2_cifar on CIFAR-100 (docs/reference.md §6: 64.60 top-1).
_base_ = ['../_base_/datasets/cifar100.py', '../_base_/schedules/cifar100_240e.py',
          '../_base_/default_runtime.py']
model = dict(type='ImageClassifier', net=dict(type='mobilenetv2_cifar', num_classes=100),
             data_preprocessor={{_base_.data_preprocessor}})
# lr 0.01 for ShuffleNet/MobileNet students (CAT-KD paper §4.1, RepDistiller).
optim_wrapper = dict(optimizer=dict(lr=0.01))
