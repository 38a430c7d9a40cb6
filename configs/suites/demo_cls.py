# The embedded classification demo (`make demo`): scikit-learn's digits (no download),
# CPU only. Teacher resnet20 on all 1347 training images (30 epochs); student resnet8 on a
# tenth of them (13 per class, 150 epochs): baseline, KD, AT, CAT-KD and TaT, two seeds
# each (the teacher once). See configs/demo/resnet8_fewdigits.py and docs/demo.md.
dataset = 'fewdigits'
config_dir = '../demo'
metric = 'accuracy/top1'
seeds = [0, 1]
pairs = [('resnet20', 'resnet8')]
methods = 'registered'   # every registered method with a config for the pair
