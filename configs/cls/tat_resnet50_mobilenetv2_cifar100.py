# TaT resnet50_cifar -> mobilenetv2_cifar, CIFAR-100, without logit KD. No published TaT
# setting for this pair (TaT paper Table 1 has 7 same-style CIFAR pairs; docs/reference.md §4, §6),
# so kdbench's documented default: global mode on last_stage with the TaT classification
# connectors (phi identity on the teacher keys, theta/gamma Conv3x3+BN to the teacher's
# channels: the settings of every shipped TaT CIFAR config). No published pair has this
# teacher; the Eq. 9 weights are those of the closest one, resnet32x4 -> resnet8x4 (CE
# alpha 1, TaT epsilon 20, supplementary Table 13, as tat_resnet32x4_resnet8x4_cifar100.py):
# the other strong ResNet teacher (79.42 vs 79.34 top-1, docs/reference.md §6), whose setting the
# resnet32x4 -> ShuffleNet configs reuse too. Unverified: tune for this pair.
# Shapes: student last_stage 160 ch at 2x2, teacher 2048 ch at 4x4: theta/gamma map
# 160 -> 2048 and the student query/value are resized bilinearly to 4x4.
# Schedule from the pair base: SGD lr 0.01 for MobileNet students (docs/reference.md §3).
_base_ = ['./_base_/resnet50_mobilenetv2_cifar100.py']
model = dict(student_loss_weight=1.0,
             methods=dict(tat=dict(type='TaT', mode='global', theta='conv3x3_bn',
                                   phi='identity', gamma='conv3x3_bn', loss_weight=20.0)))
