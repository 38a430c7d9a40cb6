# TaT, official protocol: DeepLabV3+ R101 -> ResNet-18 on COCOStuff-10k with the official
# script's settings (docs/reference.md §4 table;
# TaT paper Table 5: 28.75 mIoU): the tap is the 256-channel
# decoder feature before its ReLU (stride 4: 128x128 for the 512 crop; smp needs /16, the
# script crops 513 -> 129x129), n=m=32 patches, groups 512, anchors 32 per side (kernel 4),
# delta 0.6, zeta 0.6, lr 0.01, batch 16, cosine decay; validation on 513x513 resized
# images as the official code does (interpolation 1 = bilinear, 0 = nearest for labels).
_base_ = ['./tat_deeplabv3p_r101_r18_cocostuff10k.py']
model = dict(methods=dict(tat=dict(patches=(32, 32), groups=512, anchors=(32, 32),
                                   taps=('decoder_pre_relu',))))
val_dataloader = dict(dataset=dict(pipeline=[
    dict(type='Resize', height=513, width=513, interpolation=1, mask_interpolation=0)]))
test_dataloader = val_dataloader
