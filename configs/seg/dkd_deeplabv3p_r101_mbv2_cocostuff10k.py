# DKD per pixel on the logit maps (stride 4), 255 ignored: kdbench's own setting (no
# published dense DKD); DKD's ImageNet recipe: alpha 1, beta 0.5, T 1, warm-up 1 epoch.
_base_ = ['./_base_/deeplabv3p_r101_mbv2_cocostuff10k.py']
model = dict(methods=dict(dkd=dict(type='DKD', alpha=1.0, beta=0.5, temperature=1.0,
                                   warmup=1, ignore_index=255)))
