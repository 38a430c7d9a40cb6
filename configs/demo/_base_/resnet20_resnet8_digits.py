# Demo pair resnet20 -> resnet8 on digits; tools/demo.py fills teacher_ckpt.
_base_ = ['../resnet8_digits.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='ImageClassifier', net=dict(type='resnet20', num_classes=10)),
    teacher_ckpt='work_dirs/demo/teacher/epoch_30.pth',
    methods=dict())
