# TaT wrn_40_2 -> shufflenetv1, CIFAR-100, without logit KD. No published TaT setting
# for this pair (TaT paper Table 1 has 7 same-style CIFAR pairs; docs/reference.md §4, §6), so
# kdbench's documented default: global mode on last_stage with the TaT classification
# connectors (phi identity on the teacher keys, theta/gamma Conv3x3+BN to the teacher's
# channels: the settings of every shipped TaT CIFAR config) and the Eq. 9 weights of the
# closest published pair with the same teacher, wrn_40_2 -> wrn_40_1 (CE alpha 0.7, TaT
# epsilon 3.6, supplementary Table 13, as tat_wrn_40_2_wrn_40_1_cifar100.py; the other
# wrn_40_2 pair borrows its epsilon): the TaT loss regresses the teacher feature, so its
# scale follows the teacher. Unverified: tune for this pair.
# Shapes: student last_stage 960 ch at 4x4, teacher 128 ch at 8x8: theta/gamma map
# 960 -> 128 and the student query/value are resized bilinearly to 8x8.
# The WRN last_stage tap is block3 before the final BN-ReLU; the post-ReLU map is
# taps=('pre_pool',).
# Schedule from the pair base: SGD lr 0.01 for ShuffleNet students (docs/reference.md §3).
_base_ = ['./_base_/wrn_40_2_shufflenetv1_cifar100.py']
model = dict(student_loss_weight=0.7,
             methods=dict(tat=dict(type='TaT', mode='global', theta='conv3x3_bn',
                                   phi='identity', gamma='conv3x3_bn', loss_weight=3.6)))
