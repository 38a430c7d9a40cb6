# Demo segmentation teacher: DeepLabV3+ ResNet-34 (output stride 16, random init: no
# ImageNet weights in the demo) on the embedded digit scenes, trained twice as long as the
# students (4 epochs, 240 iterations): a teacher is the better-trained, larger model.
_base_ = ['./_base_/digitseg.py', './_base_/schedule.py', '../../_base_/default_runtime.py']
model = dict(type='DeepLabV3PlusSegmentor', encoder='resnet34', num_classes=11,
             output_stride=16, encoder_ckpt=None,
             data_preprocessor={{_base_.data_preprocessor}})
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=True, begin=0,
                        end=4, convert_to_iter_based=True)]
train_cfg = dict(max_epochs=4, val_interval=4)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=4))
