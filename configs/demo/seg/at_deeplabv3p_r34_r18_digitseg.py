# Demo AT on the last encoder stage (512 channels for both ResNets, 4x4 on a 64x64 scene),
# p=2, beta=1000, CE 1, as the VOC configs.
_base_ = ['./_base_/deeplabv3p_r34_r18_digitseg.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
