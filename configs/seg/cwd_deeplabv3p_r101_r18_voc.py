# CWD on the logit maps (stride 4), tau 4, weight 3, CE 1: the official Cityscapes
# command (docs/reference.md, CWD); the authors' later configs: tau 1, weight 5.
_base_ = ['./_base_/deeplabv3p_r101_r18_voc.py']
model = dict(methods=dict(cwd=dict(type='CWD', temperature=4.0, loss_weight=3.0)))
