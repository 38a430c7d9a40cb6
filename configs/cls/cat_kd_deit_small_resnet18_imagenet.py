# CAT-KD DeiT-S -> ResNet-18 on ImageNet (not a paper pair): the ResNet-34 -> ResNet-18
# row of docs/reference.md §3 (beta 0.5, r 2, no normalisation). The teacher reads its
# class token, so its CAMs (its normalised patch tokens through its classifier) are an
# approximation (docs/models.md, CAT-KD's maps).
_base_ = ['./_base_/deit_small_resnet18_imagenet.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=0.5, resolution=2, normalize=False)))
