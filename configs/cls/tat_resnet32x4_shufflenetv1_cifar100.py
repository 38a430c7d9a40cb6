# TaT resnet32x4 -> shufflenetv1, CIFAR-100, without logit KD. No published TaT setting
# for this pair (TaT paper Table 1 has 7 same-style CIFAR pairs; docs/reference.md §4, §6), so
# kdbench's documented default: global mode on last_stage with the TaT classification
# connectors (phi identity on the teacher keys, theta/gamma Conv3x3+BN to the teacher's
# channels: the settings of every shipped TaT CIFAR config) and the Eq. 9 weights of the
# closest published pair, the same-teacher resnet32x4 -> resnet8x4 (CE alpha 1, TaT
# epsilon 20, supplementary Table 13, as tat_resnet32x4_resnet8x4_cifar100.py): the TaT
# loss regresses the teacher feature, so its scale follows the teacher. Unverified: tune.
# Shapes: student last_stage 960 ch at 4x4, teacher 256 ch at 8x8: theta/gamma map
# 960 -> 256 and the student query/value are resized bilinearly to 8x8.
# Schedule from the pair base: SGD lr 0.01 for ShuffleNet students (docs/reference.md §3).
_base_ = ['./_base_/resnet32x4_shufflenetv1_cifar100.py']
model = dict(student_loss_weight=1.0,
             methods=dict(tat=dict(type='TaT', mode='global', theta='conv3x3_bn',
                                   phi='identity', gamma='conv3x3_bn', loss_weight=20.0)))
