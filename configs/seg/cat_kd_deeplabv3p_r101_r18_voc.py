# CAT-KD on segmentation: the per-class logit maps before upsampling (stride 4) are the
# class attention maps. No published setting exists: kdbench's default pools them to 8x8
# (a 512 crop gives 128x128 maps) and L2-normalises each, beta 50 (the CAT-only default of
# docs/reference.md §3), CE weight 1.
_base_ = ['./_base_/deeplabv3p_r101_r18_voc.py']
model = dict(methods=dict(cat_kd=dict(type='CATKD', beta=50.0, resolution=8, normalize=True,
                                      taps=('logits',))))
