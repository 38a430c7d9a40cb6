# Teacher: DeepLabV3+ ResNet-101, output stride 16, on COCOStuff-10k, 171 classes (TaT
# paper: 33.10 mIoU); encoder from torchvision's ImageNet ResNet-101. Schedule of the
# official baseline script (TaT-seg train_cocostuff10k_baseline.sh): 200 epochs at batch 16,
# encoder lr 0.004 (head 0.04), poly per iteration, SGD momentum 0.9 nesterov, wd 5e-4.
_base_ = ['./_base_/deeplabv3p_cocostuff10k.py']
model = dict(encoder='resnet101', encoder_ckpt='checkpoints/resnet101-63fe2227.pth')
optim_wrapper = dict(optimizer=dict(lr=0.004))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=True, begin=0,
                        end=200, convert_to_iter_based=True)]
train_cfg = dict(max_epochs=200)
