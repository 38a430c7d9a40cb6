# Demo pair DeepLabV3+ ResNet-34 -> ResNet-18 on the digit scenes; tools/benchmark.py
# fills teacher_ckpt with the suite's teacher run (the default is where `make demo` leaves
# it).
_base_ = ['../deeplabv3p_r18_digitseg.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='DeepLabV3PlusSegmentor', encoder='resnet34', num_classes=11,
                 output_stride=16, encoder_ckpt=None),
    teacher_ckpt='work_dirs/demo/demo_seg/deeplabv3p_r34_digitseg/seed_0/epoch_4.pth',
    methods=dict())
