# COCOStuff-10k table (docs/reference.md §6, TaT paper): the VOC suite's pairs, methods and seeds
# on COCOStuff-10k (DeepLabV3+ ResNet-101 -> ResNet-18 and -> MobileNetV2; baseline, KD, AT,
# CAT-KD, TaT and TaT with the official scripts' decoder tap).
_base_ = ['voc.py']
dataset = 'cocostuff10k'
