# Student baseline: DeepLabV3+ ResNet-18 on VOC aug (TaT paper: 72.07 mIoU), encoder from
# torchvision's ImageNet ResNet-18 file. Schedule of the official comparison script (KD, AT:
# 100 epochs, batch 16, encoder lr 0.007, head 0.07, poly), so that the baseline and KD/AT
# differ only in the loss.
_base_ = ['./_base_/deeplabv3p_voc.py']
model = dict(encoder='resnet18', encoder_ckpt='checkpoints/resnet18-f37072fd.pth')
