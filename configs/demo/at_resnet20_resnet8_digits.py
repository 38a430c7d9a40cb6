# Demo AT on the last stage (p=2, beta=1000, CE 1.0).
_base_ = ['./_base_/resnet20_resnet8_digits.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
