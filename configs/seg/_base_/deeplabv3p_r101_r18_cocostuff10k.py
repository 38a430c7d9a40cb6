# Pair DeepLabV3+ ResNet-101 -> ResNet-18 on COCOStuff-10k: the baseline's student plus
# the teacher (trained with ../deeplabv3p_r101_cocostuff10k.py). Leaf configs add `methods`.
_base_ = ['../deeplabv3p_r18_cocostuff10k.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='DeepLabV3PlusSegmentor', encoder='resnet101',
                 num_classes={{_base_.model.num_classes}}, output_stride=16),
    teacher_ckpt='checkpoints/cocostuff10k/deeplabv3p_r101.pth',
    methods=dict())
