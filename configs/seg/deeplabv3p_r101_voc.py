# Teacher: DeepLabV3+ ResNet-101, output stride 16, on VOC aug (TaT paper: 78.43 mIoU, the
# checkpoint of pytorch-deeplab-xception that the official TaT-seg code distils from). The
# encoder starts from torchvision's ImageNet ResNet-101 file (IMAGENET1K_V1, put under
# checkpoints/; no download happens). Schedule of that checkpoint's script (train_voc.sh):
# 50 epochs at batch 16, encoder lr 0.007 (head 0.07), poly per iteration, SGD momentum
# 0.9 without nesterov, wd 5e-4.
_base_ = ['./_base_/deeplabv3p_voc.py']
model = dict(encoder='resnet101', encoder_ckpt='checkpoints/resnet101-63fe2227.pth')
optim_wrapper = dict(optimizer=dict(lr=0.007, nesterov=False))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=True, begin=0,
                        end=50, convert_to_iter_based=True)]
train_cfg = dict(max_epochs=50)
