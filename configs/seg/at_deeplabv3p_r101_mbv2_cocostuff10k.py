# AT on the last encoder stage (both at stride 16), p=2, beta=1000 (the paper's weight;
# no published segmentation setting, docs/reference.md §2), CE weight 1.
_base_ = ['./_base_/deeplabv3p_r101_mbv2_cocostuff10k.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
