# Demo TaT (hierarchical) on the decoder feature (256 channels, stride 4: 16x16 on a 64x64
# scene), not on the last stage (4x4 here: too small for patches and anchors). The official
# segmentation scripts tap the decoder too (docs/reference.md §4: n=m=16 patches of 8x8 cells,
# groups 64 = 4 patches per group, anchors 32 = kernel 4 on a 129x129 map); the same rule
# as the flagship configs/seg/tat_deeplabv3p_r101_r18_voc.py (keep the patch size in
# cells, the patches per group and the anchor kernel) on a 16x16 map gives n=m=2 patches of
# 8x8 cells, groups=1 (4 patches per group) and anchors=(4, 4) (kernel 4). Official
# weights: delta 0.1, zeta 0.04, theta/phi/gamma Conv1x1+BN, CE 1.
_base_ = ['./_base_/deeplabv3p_r34_r18_digitseg.py']
model = dict(methods=dict(tat=dict(type='TaT', mode='hierarchical', delta=0.1, zeta=0.04,
                                   patches=(2, 2), groups=1, anchors=(4, 4),
                                   taps=('decoder',))))
