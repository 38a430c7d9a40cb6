# The embedded segmentation demo (`make demo`, after demo_cls): synthetic scenes of
# scikit-learn digits (11 classes: background + 10 digits), CPU only. DeepLabV3+ teacher
# ResNet-34 (4 epochs), student ResNet-18 (2 epochs), all from random weights: baseline, KD,
# AT, CAT-KD and TaT, two seeds each (the teacher once). AT and CAT-KD weights are the VOC
# ones scaled to the demo's map sizes (see their configs and docs/demo.md).
dataset = 'digitseg'
config_dir = '../demo/seg'
metric = 'mIoU'
seeds = [0, 1]
pairs = [('deeplabv3p_r34', 'deeplabv3p_r18', 'deeplabv3p_r34_r18')]
methods = 'registered'   # every registered method with a config for the pair
