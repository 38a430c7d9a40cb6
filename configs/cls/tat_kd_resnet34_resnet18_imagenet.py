# TaT + logit KD, ResNet-34 -> ResNet-18 on ImageNet (docs/reference.md §4; TaT paper Sec. 4.2,
# Eq. 9: alpha 0.5 CE + beta 0.5 KL(T=1) + epsilon 0.1 TaT; Table 2: 72.41 top-1).
# Everything else (pretrained student, connectors, AdamW schedule) as the TaT config.
_base_ = ['./tat_resnet34_resnet18_imagenet.py']
model = dict(student_loss_weight=0.5,
             methods=dict(kd=dict(type='KD', temperature=1.0, loss_weight=0.5),
                          tat=dict(loss_weight=0.1)))
