# Baseline: DeepLabV3+ MobileNetV2 on COCOStuff-10k (docs/reference.md §6, TaT paper: 26.29).
_base_ = ['./deeplabv3p_r101_cocostuff10k.py']
model = dict(encoder='mobilenet_v2', encoder_ckpt='checkpoints/mobilenet_v2-b0353104.pth')
