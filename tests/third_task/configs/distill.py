# Distillation on the test-only regression task; the test sets teacher_ckpt and swaps the
# method with --cfg-options (AT here; FitNet, TaT, CWD on features in the tests).
_base_ = ['./student.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='PixelRegressor', widths=(16, 32, 64)),
    teacher_ckpt='work_dirs/third_task_teacher/epoch_2.pth',
    methods=dict(at=dict(type='AT')))
