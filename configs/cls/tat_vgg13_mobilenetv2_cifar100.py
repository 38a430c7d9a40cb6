# TaT vgg13 -> mobilenetv2_cifar, CIFAR-100, without logit KD. No published TaT setting
# for this pair (TaT paper Table 1 has 7 same-style CIFAR pairs; docs/reference.md §4, §6), so
# kdbench's documented default: global mode on last_stage with the TaT classification
# connectors (phi identity on the teacher keys, theta/gamma Conv3x3+BN to the teacher's
# channels: the settings of every shipped TaT CIFAR config) and the Eq. 9 weights of the
# closest published pair, the same-teacher vgg13 -> vgg8 (CE alpha 0.1, TaT epsilon 8,
# supplementary Table 13, as tat_vgg13_vgg8_cifar100.py): the TaT loss regresses the
# teacher feature, so its scale follows the teacher. Unverified: tune for this pair.
# Shapes: student last_stage 160 ch at 2x2, teacher 512 ch at 4x4: theta/gamma map
# 160 -> 512 and the student query/value are resized bilinearly to 4x4.
# Schedule from the pair base: SGD lr 0.01 for MobileNet students (docs/reference.md §3).
_base_ = ['./_base_/vgg13_mobilenetv2_cifar100.py']
model = dict(student_loss_weight=0.1,
             methods=dict(tat=dict(type='TaT', mode='global', theta='conv3x3_bn',
                                   phi='identity', gamma='conv3x3_bn', loss_weight=8.0)))
