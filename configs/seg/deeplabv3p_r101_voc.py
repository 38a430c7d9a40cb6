# Teacher: DeepLabV3+ ResNet-101, output stride 16, on VOC aug (docs/reference.md §6, TaT paper:
# 78.43 mIoU). The encoder starts from torchvision's ImageNet ResNet-101 file
# (IMAGENET1K_V1, put under checkpoints/; no download happens).
_base_ = ['../_base_/datasets/voc_aug.py', '../_base_/schedules/seg_poly_100e.py',
          '../_base_/default_runtime.py']
model = dict(type='DeepLabV3PlusSegmentor', encoder='resnet101', num_classes=21,
             output_stride=16, encoder_ckpt='checkpoints/resnet101-63fe2227.pth',
             data_preprocessor={{_base_.data_preprocessor}})
