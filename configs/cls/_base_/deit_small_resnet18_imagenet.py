# Pair DeiT-S -> ResNet-18 on ImageNet (beyond the papers: a ViT teacher, docs/models.md).
# The teacher is timm's deit_small_patch16_224.fb_in1k (79.9 top-1 per timm) as a
# TimmClassifier; its file is timm's state dict (e.g. torch.save(timm.create_model(
# 'deit_small_patch16_224.fb_in1k', pretrained=True).state_dict(), PATH); DeiT's own
# release nests it under 'model', which kdbench reads as a CIFAR release). Its
# normalisation is its pretrained_cfg's mean/std (x255), ImageNet's like the student's, so
# the Distiller feeds it the student's batch unchanged; it sees the student's 224 px crops
# (its img_size).
_base_ = ['../resnet18_imagenet.py']
model = dict(
    _delete_=True, type='Distiller',
    student={{_base_.model}},
    teacher=dict(type='TimmClassifier', model_name='deit_small_patch16_224.fb_in1k',
                 num_classes=1000,
                 data_preprocessor=dict(type='ImgDataPreprocessor',
                                        mean=[123.675, 116.28, 103.53],
                                        std=[58.395, 57.12, 57.375])),
    teacher_ckpt='checkpoints/deit_small_patch16_224.fb_in1k.pth',
    methods=dict())
