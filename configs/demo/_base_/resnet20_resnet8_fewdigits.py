# Demo pair resnet20 (all images) -> resnet8 (a tenth) on digits; tools/benchmark.py fills
# teacher_ckpt with the suite's teacher run (the default is where `make demo` leaves it).
_base_ = ['../resnet8_fewdigits.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='ImageClassifier', net=dict(type='resnet20', num_classes=10)),
    teacher_ckpt='work_dirs/demo/demo_cls/resnet20_fewdigits/seed_0/epoch_30.pth',
    methods=dict())
