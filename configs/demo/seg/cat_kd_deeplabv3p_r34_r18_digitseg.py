# Demo CAT-KD on the per-class logit maps (16x16 on a 64x64 scene), beta 50, normalised,
# CE 1, as the VOC configs, but pooled to 4x4 instead of 8x8: one cell is then 16x16 px,
# about one digit (the VOC configs' 8x8 on 128x128 maps keeps 16x16 logit cells).
_base_ = ['./_base_/deeplabv3p_r34_r18_digitseg.py']
model = dict(methods=dict(cat_kd=dict(type='CATKD', beta=50.0, resolution=4, normalize=True,
                                      taps=('logits',))))
