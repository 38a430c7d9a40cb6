# The CIFAR-100 table (docs/reference.md §6): the 11 teacher-student pairs of RepDistiller/CAT-KD
# plus the TaT paper's resnet110 -> resnet20; baseline, KD, AT, CAT-KD, TaT, DKD, DIST and
# FitNet, 5 seeds
# (the papers average 5 runs). 240 epochs each: run it on a GPU cluster
# (`tools/benchmark.py configs/suites/cifar100.py --commands --gpus 1`).
dataset = 'cifar100'
config_dir = '../cls'
metric = 'accuracy/top1'
seeds = [0, 1, 2, 3, 4]
pairs = [('wrn_40_2', 'wrn_16_2'), ('wrn_40_2', 'wrn_40_1'), ('resnet56', 'resnet20'),
         ('resnet110', 'resnet20'), ('resnet110', 'resnet32'), ('resnet32x4', 'resnet8x4'),
         ('vgg13', 'vgg8'), ('vgg13', 'mobilenetv2'), ('resnet50', 'mobilenetv2'),
         ('resnet32x4', 'shufflenetv1'), ('resnet32x4', 'shufflenetv2'),
         ('wrn_40_2', 'shufflenetv1')]
methods = 'registered'   # every registered method with a config for the pair
exclude = ['CWD']   # its config here only serves the overhead benchmark
reference = 'reference_results.csv'
