# Student baseline: MobileNetV1 (not in torchvision; kdbench's own) on ImageNet from
# scratch, 100-epoch recipe. CAT-KD Table 8 baseline: 68.87 top-1.
_base_ = ['./resnet34_imagenet.py']
model = dict(net=dict(type='mobilenetv1'))
