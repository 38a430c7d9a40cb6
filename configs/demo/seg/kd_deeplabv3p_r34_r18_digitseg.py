# Demo pixel-wise KD on the logit maps (stride 4: 16x16), T=1, CE 1 + KD 1, as the VOC
# configs (configs/seg/kd_*); no pixel is ignored in this data, ignore_index kept for form.
_base_ = ['./_base_/deeplabv3p_r34_r18_digitseg.py']
model = dict(methods=dict(kd=dict(type='KD', temperature=1.0, loss_weight=1.0,
                                  ignore_index=255)))
