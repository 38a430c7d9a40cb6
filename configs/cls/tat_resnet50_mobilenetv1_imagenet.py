# TaT ResNet-50 -> MobileNetV1 on ImageNet without logit KD. No published TaT setting for
# this pair (the TaT paper's only ImageNet pair is ResNet-34 -> ResNet-18; docs/reference.md §4),
# so kdbench's documented default is that pair's official recipe
# (tat_resnet34_resnet18_imagenet.py): last_stage, global attention, phi (teacher keys)
# identity, theta/gamma Conv3x3+BN, total 0.1 * CE + 0.2 * TaT, AdamW lr 1.6e-3, wd 5e-4.
# Shapes: student last_stage 1024 ch, teacher layer4 2048 ch, both 7x7 at 224 input:
# theta/gamma map 1024 -> 2048, no resizing.
# Difference: the official student starts ImageNet-pretrained; there is no standard
# MobileNetV1 ImageNet file, so this student starts from random weights (set
# model.student.net.weights to a trained mobilenetv1_imagenet.py checkpoint to mirror the
# official protocol). Unverified recipe: tune for this pair.
_base_ = ['./_base_/resnet50_mobilenetv1_imagenet.py']
model = dict(
    student_loss_weight=0.1,
    methods=dict(tat=dict(type='TaT', mode='global', theta='conv3x3_bn', phi='identity',
                          gamma='conv3x3_bn', loss_weight=0.2)))
# AdamW, 100 epochs, x0.1 at 30/60/90 (TaT paper Sec. 4.2; epochs/milestones from the
# base). lr/wd follow the official ResNet-34 -> ResNet-18 config (1.6e-3, wd 5e-4).
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1.6e-3, weight_decay=5e-4))
