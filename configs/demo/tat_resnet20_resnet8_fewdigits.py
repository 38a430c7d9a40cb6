# Demo TaT on the few-digits task: the last stage (global attention over the 4x4 map),
# TaT's global defaults (official classification code: phi identity, theta/gamma
# Conv3x3+BN), CE 0.1 + TaT 0.2, and the student schedule of resnet8_fewdigits.py
# (150 epochs, batch 32, lr 0.05, cosine).
_base_ = ['./_base_/resnet20_resnet8_fewdigits.py']
model = dict(student_loss_weight=0.1,
             methods=dict(tat=dict(type='TaT', mode='global', theta='conv3x3_bn',
                                   phi='identity', gamma='conv3x3_bn', loss_weight=0.2)))
