# Student baseline: DeepLabV3+ ResNet-18 on COCOStuff-10k (docs/reference.md §6, TaT paper: 26.33).
_base_ = ['./deeplabv3p_r101_cocostuff10k.py']
model = dict(encoder='resnet18', encoder_ckpt='checkpoints/resnet18-f37072fd.pth')
