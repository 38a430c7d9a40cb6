# TaT wrn_40_2 -> wrn_40_1, CIFAR-100, without logit KD (TaT paper, CVPR 2022, Table 1:
# 74.97 top-1). The pair base has the paper's schedule (Sec. 4.2: SGD lr 0.05, 240 epochs,
# x0.1 at 150/180/210). Connectors (Sec. 4.3, Table 6): the paper's teacher-side map (its
# theta, kdbench's phi) is the identity; the student query/value maps (kdbench theta/gamma)
# are Conv3x3+BN to the teacher's channels (Eq. 7): the TaT global defaults. Loss weights of
# Eq. 9 (docs/reference.md §4): CE
# alpha 0.7, TaT epsilon 3.6 (supplementary Table 13).
# 64 student vs 128 teacher channels: theta/gamma map 64 -> 128.
# The WRN last_stage tap is block3 before the final BN-ReLU; the post-ReLU map is
# taps=('pre_pool',).
_base_ = ['./_base_/wrn_40_2_wrn_40_1_cifar100.py']
model = dict(student_loss_weight=0.7,
             methods=dict(tat=dict(type='TaT', mode='global', theta='conv3x3_bn',
                                   phi='identity', gamma='conv3x3_bn', loss_weight=3.6)))
