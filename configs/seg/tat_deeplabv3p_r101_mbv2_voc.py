# TaT (hierarchical) DeepLabV3+ R101 -> MobileNetV2 on VOC aug, distilling the last
# encoder stage (stride 16: 32x32 for the 512 training crop, 33x33 for a 513 image), as the
# paper says and kdbench does by default (TaT paper Table 3: 73.85 mIoU; the official
# scripts tap the decoder instead: tat_official_deeplabv3p_r101_mbv2_voc.py).
# Hierarchy for a 32x32 map, derived from the official VOC aug MobileNetV2 script (docs/reference.md
# §4: n=m=32, groups 1024, anchors 64 on its 129x129 decoder map): keep its patch size in
# map cells (4x4), its patches per group (1) and its anchor kernel (2), on a map 16x
# smaller: n=m=8 patches (64 in all, remainder rows/columns of a 33x33 map dropped),
# groups=64, anchors=16 per side (kernel 2). Script values kept: lr 0.004, batch 12, delta 0.1,
# zeta 0.05, theta/phi/gamma Conv1x1+BN, cosine decay per iteration, CE weight 1.
_base_ = ['./_base_/deeplabv3p_r101_mbv2_voc.py']
model = dict(methods=dict(tat=dict(type='TaT', mode='hierarchical', delta=0.1, zeta=0.05,
                                   patches=(8, 8), groups=64, anchors=(16, 16))))
optim_wrapper = dict(optimizer=dict(lr=0.004))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=100, eta_min=0.0, by_epoch=True,
                        begin=0, end=100, convert_to_iter_based=True)]
train_dataloader = dict(batch_size=12)
auto_scale_lr = dict(base_batch_size=12)
