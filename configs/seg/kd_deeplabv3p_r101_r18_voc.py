# Pixel-wise KD on the logit maps (stride 4, before upsampling), 255 pixels ignored.
# T=1, weights CE 1 + KD 1: a kdbench default (no published setting in docs/reference.md §5/§6).
_base_ = ['./_base_/deeplabv3p_r101_r18_voc.py']
model = dict(methods=dict(kd=dict(type='KD', temperature=1.0, loss_weight=1.0,
                                  ignore_index=255)))
