# Demo teacher: CIFAR resnet20 on the embedded digits data (no download, CPU).
_base_ = ['../_base_/datasets/digits.py', '../_base_/schedules/demo_30e.py',
          '../_base_/default_runtime.py']
model = dict(type='ImageClassifier', net=dict(type='resnet20', num_classes=10),
             data_preprocessor={{_base_.data_preprocessor}})
default_hooks = dict(logger=dict(interval=10))
