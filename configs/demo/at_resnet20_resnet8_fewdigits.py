# Demo AT on the few-digits task: the last stage (p=2, beta=1000, CE 1.0, the CIFAR
# weights) and the student schedule of resnet8_fewdigits.py (150 epochs, batch 32, lr 0.05).
_base_ = ['./_base_/resnet20_resnet8_fewdigits.py']
model = dict(methods=dict(at=dict(type='AT', p=2, loss_weight=1000.0)))
