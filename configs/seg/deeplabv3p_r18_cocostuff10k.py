# Student baseline: DeepLabV3+ ResNet-18 on COCOStuff-10k (TaT paper: 26.33 mIoU); schedule
# of the official comparison script (train_comp.sh: 100 epochs, batch 16, encoder lr 0.007,
# head 0.07, poly), so that the baseline and KD/AT differ only in the loss.
_base_ = ['./_base_/deeplabv3p_cocostuff10k.py']
model = dict(encoder='resnet18', encoder_ckpt='checkpoints/resnet18-f37072fd.pth')
