# TaT one-to-all (mode='global': one attention over all H*W positions of the 32x32 last-stage
# map, no patch groups or anchors) for DeepLabV3+ R101 -> ResNet-18 on VOC aug: the full TaT
# that the hierarchy approximates, to compare with tat_deeplabv3p_r101_r18_voc.py (same
# schedule, Conv1x1+BN connectors). Weight 0.1 = that config's patch-group weight delta
# (kdbench's choice; the paper has no global segmentation run). Memory-efficient attention
# keeps it to O(H*W) memory; see docs/tat.md.
_base_ = ['./tat_deeplabv3p_r101_r18_voc.py']
model = dict(methods=dict(tat=dict(_delete_=True, type='TaT', mode='global', theta='conv1x1_bn',
                                   phi='conv1x1_bn', gamma='conv1x1_bn', loss_weight=0.1)))
