# The embedded segmentation demo (`make demo`, beside demo_cls): synthetic scenes of
# scikit-learn digits (11 classes: background + 10 digits), CPU only. DeepLabV3+ teacher
# ResNet-34 (4 epochs), student ResNet-18 (2 epochs), all from random weights: baseline, KD,
# AT, CAT-KD and TaT, one seed (the teacher once). AT and CAT-KD weights are the VOC
# ones scaled to the demo's map sizes (see their configs and docs/demo.md).
# The students validate on 96 held-out training scenes and the test split is evaluated
# once, at the end. Each method's main weight is tried at a quarter, one and four times
# the recipe's value (the recipe's run is the middle one), and the setting with the best
# validation mIoU (mean over the seeds) is reported beside the recipe's.
dataset = 'digitseg'
config_dir = '../demo/seg'
metric = 'mIoU'
seeds = [0]
pairs = [('deeplabv3p_r34', 'deeplabv3p_r18', 'deeplabv3p_r34_r18')]
methods = 'registered'   # every registered method with a config for the pair
grids = {'KD': {'model.methods.kd.loss_weight': [0.25, 1.0, 4.0]},
         'AT': {'model.methods.at.loss_weight': [3.90625, 15.625, 62.5]},
         'CAT-KD': {'model.methods.cat_kd.beta': [3.125, 12.5, 50.0]},
         'TaT': {'model.methods.tat.delta': [0.025, 0.1, 0.4]}}
