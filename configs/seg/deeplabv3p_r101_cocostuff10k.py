# Teacher: DeepLabV3+ ResNet-101, output stride 16, on COCOStuff-10k, 171 classes
# (docs/reference.md §6, TaT paper: 33.10 mIoU); encoder from torchvision's ImageNet ResNet-101.
_base_ = ['../_base_/datasets/cocostuff10k.py', '../_base_/schedules/seg_poly_100e.py',
          '../_base_/default_runtime.py']
model = dict(type='DeepLabV3PlusSegmentor', encoder='resnet101', num_classes=171,
             output_stride=16, encoder_ckpt='checkpoints/resnet101-63fe2227.pth',
             data_preprocessor={{_base_.data_preprocessor}})
