# Student baseline: torchvision ResNet-18 on ImageNet from scratch (100-epoch recipe).
_base_ = ['./resnet34_imagenet.py']
model = dict(net=dict(type='tv_resnet18'))
