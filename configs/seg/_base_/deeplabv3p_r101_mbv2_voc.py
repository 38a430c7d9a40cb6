# Pair DeepLabV3+ ResNet-101 -> MobileNetV2 on VOC aug: the baseline's student plus
# the teacher (trained with ../deeplabv3p_r101_voc.py). Leaf configs add `methods`.
_base_ = ['../deeplabv3p_mbv2_voc.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='DeepLabV3PlusSegmentor', encoder='resnet101',
                 num_classes={{_base_.model.num_classes}}, output_stride=16),
    teacher_ckpt='checkpoints/voc/deeplabv3p_r101.pth',
    methods=dict())
