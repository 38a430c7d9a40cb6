# Teacher: torchvision ResNet-50 on ImageNet. The CAT-KD ImageNet table uses the
# torchvision IMAGENET1K_V1 weights (76.16 top-1, CAT-KD Table 8) as the teacher.
_base_ = ['./resnet34_imagenet.py']
model = dict(net=dict(type='tv_resnet50'))
