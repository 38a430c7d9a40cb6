# Demo student baseline: CIFAR resnet8 on the embedded digits data.
_base_ = ['./resnet20_digits.py']
model = dict(net=dict(type='resnet8'))
