# Pixel-wise KD ResNet-101 -> ConvNeXt-Atto (timm encoder) on VOC aug, as the ResNet-18
# pair's: the logit maps (stride 4, before upsampling), 255 ignored, T=1, CE 1 + KD 1.
_base_ = ['./_base_/deeplabv3p_r101_convnext_atto_voc.py']
model = dict(methods=dict(kd=dict(type='KD', temperature=1.0, loss_weight=1.0,
                                  ignore_index=255)))
