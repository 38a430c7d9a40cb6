# Student baseline: DeepLabV3+ MobileNetV2 on COCOStuff-10k (TaT paper: 26.29 mIoU);
# schedule as deeplabv3p_r18_cocostuff10k.py.
_base_ = ['./_base_/deeplabv3p_cocostuff10k.py']
model = dict(encoder='mobilenet_v2', encoder_ckpt='checkpoints/mobilenet_v2-b0353104.pth')
