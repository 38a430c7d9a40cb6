# Pair DeepLabV3+ ResNet-101 -> ConvNeXt-Atto (timm encoder 'tu-convnext_atto', beyond the
# papers; docs/models.md) on VOC aug: the ResNet-18 pair with the student's encoder swapped.
# The encoder starts from timm's ImageNet weights of convnext_atto (d2_in1k, timm's own
# release, a URL fetched once into the torch hub cache; offline, the error names the file to
# copy there); their mean/std (pretrained_cfg) are ImageNet's, the student's normalisation.
_base_ = ['./deeplabv3p_r101_r18_voc.py']
model = dict(student=dict(encoder='tu-convnext_atto', encoder_ckpt=None,
                          encoder_weights='imagenet'))
