# Student baseline: DeepLabV3+ MobileNetV2 on VOC aug (docs/reference.md §6, TaT paper: 68.46 mIoU),
# encoder from torchvision's ImageNet MobileNetV2 file.
_base_ = ['./deeplabv3p_r101_voc.py']
model = dict(encoder='mobilenet_v2', encoder_ckpt='checkpoints/mobilenet_v2-b0353104.pth')
