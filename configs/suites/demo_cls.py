# The embedded classification demo (`make demo`): scikit-learn's digits (no download),
# CPU only. Teacher resnet20, student resnet8: baseline, KD, AT, CAT-KD and TaT, 30 epochs.
dataset = 'digits'
config_dir = '../demo'
metric = 'accuracy/top1'
seeds = [0]
pairs = [('resnet20', 'resnet8')]
methods = {'KD': 'kd', 'AT': 'at', 'CAT-KD': 'cat_kd', 'TaT': 'tat'}
