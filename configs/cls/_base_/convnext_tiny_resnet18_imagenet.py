# Pair ConvNeXt-T -> ResNet-18 on ImageNet (beyond the papers: a timm teacher, docs/models.md).
# The teacher is timm's convnext_tiny.fb_in1k (82.1 top-1 per timm) as a TimmClassifier; its
# file is timm's state dict (e.g. torch.save(timm.create_model('convnext_tiny.fb_in1k',
# pretrained=True).state_dict(), PATH)). Its normalisation is its pretrained_cfg's
# mean/std (x255), ImageNet's like the student's, so the Distiller feeds it the student's
# batch unchanged; it sees the student's 224 px crops (its pretrained_cfg: 224, crop 0.875).
_base_ = ['../resnet18_imagenet.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='TimmClassifier', model_name='convnext_tiny.fb_in1k', num_classes=1000,
                 data_preprocessor=dict(type='ImgDataPreprocessor',
                                        mean=[123.675, 116.28, 103.53],
                                        std=[58.395, 57.12, 57.375])),
    teacher_ckpt='checkpoints/convnext_tiny.fb_in1k.pth',
    methods=dict())
