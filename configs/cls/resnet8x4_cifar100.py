# Student baseline: CIFAR resnet8x4 on CIFAR-100 from scratch (docs/reference.md §6: 72.50 top-1).
_base_ = ['../_base_/datasets/cifar100.py', '../_base_/schedules/cifar100_240e.py',
          '../_base_/default_runtime.py']
model = dict(type='ImageClassifier', net=dict(type='resnet8x4', num_classes=100),
             data_preprocessor={{_base_.data_preprocessor}})
