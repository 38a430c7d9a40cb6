# TaT (hierarchical) DeepLabV3+ R101 -> ResNet-18 on VOC aug, distilling the last
# encoder stage (stride 16: 32x32 for the 512 training crop, 33x33 for a 513 image), as the
# paper says and kdbench does by default (TaT paper Table 3: 75.76 mIoU; the official
# scripts tap the decoder instead: tat_official_deeplabv3p_r101_r18_voc.py).
# Hierarchy for a 32x32 map, derived from the official VOC aug ResNet-18 script (docs/reference.md
# §4: n=m=16, groups 64, anchors 32 on its 129x129 decoder map): keep its patch size in
# map cells (8x8), its patches per group (4) and its anchor kernel (4), on a map 16x
# smaller: n=m=4 patches (16 in all, remainder rows/columns of a 33x33 map dropped),
# groups=4, anchors=8 per side (kernel 4). Script values kept: lr 0.007, batch 16, delta 0.1,
# zeta 0.04, theta/phi/gamma Conv1x1+BN, cosine decay per iteration, CE weight 1.
_base_ = ['./_base_/deeplabv3p_r101_r18_voc.py']
model = dict(methods=dict(tat=dict(type='TaT', mode='hierarchical', delta=0.1, zeta=0.04,
                                   patches=(4, 4), groups=4, anchors=(8, 8))))
optim_wrapper = dict(optimizer=dict(lr=0.007))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=100, eta_min=0.0, by_epoch=True,
                        begin=0, end=100, convert_to_iter_based=True)]
