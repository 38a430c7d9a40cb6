# Demo segmentation student baseline: DeepLabV3+ ResNet-18 (random init) on the embedded
# digit scenes, 2 epochs. It validates on 96 of the 480 training scenes held out by the
# digit scenes' default split (seed 0; docs/validation.md) and trains on the other 384
# (2 x 48 iterations); the 200 test scenes are evaluated once, at the end, so the demo
# suite's grids choose without looking at them.
_base_ = ['./_base_/digitseg.py', './_base_/schedule.py', '../../_base_/default_runtime.py']
model = dict(type='DeepLabV3PlusSegmentor', encoder='resnet18', num_classes=11,
             output_stride=16, encoder_ckpt=None,
             data_preprocessor={{_base_.data_preprocessor}})
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=2))
validation = dict(split='holdout')
