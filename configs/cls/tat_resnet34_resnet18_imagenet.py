# TaT ResNet-34 -> ResNet-18 on ImageNet without logit KD (docs/reference.md §4; TaT paper,
# CVPR 2022, Table 2: 72.07 top-1). As the official code: layer4 (last_stage, 512 ch,
# 7x7), global attention, phi (teacher keys) identity, theta/gamma Conv3x3+BN,
# total 0.1 * CE + 0.2 * TaT.
# The official student starts from torchvision's ImageNet-pretrained ResNet-18
# (IMAGENET1K_V1, 69.76 top-1): put resnet18-f37072fd.pth under checkpoints/ (or set
# model.student.net.weights=None to train from scratch as the other ImageNet configs do).
_base_ = ['./_base_/resnet34_resnet18_imagenet.py']
model = dict(
    student=dict(net=dict(weights='checkpoints/resnet18-f37072fd.pth')),
    student_loss_weight=0.1,
    methods=dict(tat=dict(type='TaT', mode='global', theta='conv3x3_bn', phi='identity',
                          gamma='conv3x3_bn', loss_weight=0.2)))
# AdamW, 100 epochs, x0.1 at 30/60/90 (paper Sec. 4.2; epochs/milestones from the base).
# lr/wd follow the official config (1.6e-3, wd 5e-4); the paper states lr 1.6e-4 at
# batch 2048. The total batch stays the base's 512 (8 x 64).
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=1.6e-3, weight_decay=5e-4))
