# Demo KD on the few-digits task with the CIFAR-100 recipe (T=4, CE 0.1, KD 0.9) and the
# student schedule of resnet8_fewdigits.py (150 epochs, batch 32, lr 0.05, cosine).
_base_ = ['./_base_/resnet20_resnet8_fewdigits.py']
model = dict(student_loss_weight=0.1,
             methods=dict(kd=dict(type='KD', temperature=4.0, loss_weight=0.9)))
