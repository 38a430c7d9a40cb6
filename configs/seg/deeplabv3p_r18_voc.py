# Student baseline: DeepLabV3+ ResNet-18 on VOC aug (docs/reference.md §6, TaT paper: 72.07 mIoU),
# encoder from torchvision's ImageNet ResNet-18 file.
_base_ = ['./deeplabv3p_r101_voc.py']
model = dict(encoder='resnet18', encoder_ckpt='checkpoints/resnet18-f37072fd.pth')
