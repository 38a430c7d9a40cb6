# COCOStuff-10k table (docs/reference.md §6, TaT paper): the VOC suite's pairs, methods and seeds
# on COCOStuff-10k (DeepLabV3+ ResNet-101 -> ResNet-18 and -> MobileNetV2; baseline, KD, AT,
# CAT-KD, TaT, TaT with the official scripts' decoder tap, CWD, DKD, DIST and FitNet).
_base_ = ['voc.py']
dataset = 'cocostuff10k'
