# The embedded classification demo (`make demo`): scikit-learn's digits (no download),
# CPU only. Teacher resnet20 on all 1347 training images (30 epochs); student resnet8 on a
# tenth of them (13 per class, 150 epochs): baseline, KD, AT, CAT-KD and TaT, one seed
# (a second would not fit `make demo`'s 15 minutes with the grids). See
# configs/demo/resnet8_fewdigits.py and docs/demo.md.
# The students validate on 450 of the training images they do not use and the test split
# is evaluated once, at the end. Each method's main weight is tried at a quarter, one and
# four times the recipe's value (the recipe's run is the middle one), and the setting
# with the best validation accuracy (mean over the seeds) is reported beside the recipe's.
dataset = 'fewdigits'
config_dir = '../demo'
metric = 'accuracy/top1'
seeds = [0]
pairs = [('resnet20', 'resnet8')]
methods = 'registered'   # every registered method with a config for the pair
grids = {'KD': {'model.methods.kd.temperature': [1.0, 4.0, 16.0]},
         'AT': {'model.methods.at.loss_weight': [250.0, 1000.0, 4000.0]},
         'CAT-KD': {'model.methods.cat_kd.beta': [0.175, 0.7, 2.8]},
         'TaT': {'model.methods.tat.loss_weight': [0.05, 0.2, 0.8]}}
