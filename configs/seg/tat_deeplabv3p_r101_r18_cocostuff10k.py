# TaT (hierarchical) DeepLabV3+ R101 -> ResNet-18 on COCOStuff-10k, distilling the last
# encoder stage (stride 16: 32x32 for the 512 training crop, 33x33 for a 513 image), as the
# paper says and kdbench does by default (TaT paper Table 5: 28.75 mIoU; the official
# scripts tap the decoder instead: tat_official_deeplabv3p_r101_r18_cocostuff10k.py).
# Hierarchy for a 32x32 map, from the official COCOStuff-10k ResNet-18 script (docs/reference.md
# §4: n=m=32, groups 512, anchors 32 on its 129x129 decoder map): keep its patch size in
# map cells (4x4), its patches per group (2) and its anchor kernel (4), on a map 16x
# smaller: n=m=8 patches (64 in all, remainder rows/columns of a 33x33 map dropped),
# groups=32, anchors=8 per side (kernel 4). Script values kept: lr 0.01, batch 16, delta 0.6,
# zeta 0.6, theta/phi/gamma Conv1x1+BN, cosine decay per iteration, CE weight 1.
_base_ = ['./_base_/deeplabv3p_r101_r18_cocostuff10k.py']
model = dict(methods=dict(tat=dict(type='TaT', mode='hierarchical', delta=0.6, zeta=0.6,
                                   patches=(8, 8), groups=32, anchors=(8, 8))))
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=100, eta_min=0.0, by_epoch=True,
                        begin=0, end=100, convert_to_iter_based=True)]
