# Demo TaT on the last stage (global attention over the 4x4 map): TaT's global defaults
# (official classification code: phi identity, theta/gamma Conv3x3+BN), CE 0.1 + TaT 0.2.
_base_ = ['./_base_/resnet20_resnet8_digits.py']
model = dict(student_loss_weight=0.1,
             methods=dict(tat=dict(type='TaT', mode='global', theta='conv3x3_bn',
                                   phi='identity', gamma='conv3x3_bn', loss_weight=0.2)))
