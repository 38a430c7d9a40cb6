# DIST on the logit maps, every pixel a sample, no temperature (tau 1), weight 1, CE 1:
# the official segmentation recipe (docs/reference.md, DIST; no aux head here).
_base_ = ['./_base_/deeplabv3p_r101_mbv2_cocostuff10k.py']
model = dict(methods=dict(dist=dict(type='DIST', temperature=1.0, loss_weight=1.0)))
