# Demo segmentation student baseline: DeepLabV3+ ResNet-18 (random init) on the embedded
# digit scenes, 2 epochs (120 iterations).
_base_ = ['./_base_/digitseg.py', './_base_/schedule.py', '../../_base_/default_runtime.py']
model = dict(type='DeepLabV3PlusSegmentor', encoder='resnet18', num_classes=11,
             output_stride=16, encoder_ckpt=None,
             data_preprocessor={{_base_.data_preprocessor}})
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=2))
