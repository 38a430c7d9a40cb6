# The Pascal VOC table (docs/reference.md §6, TaT paper): DeepLabV3+ ResNet-101 -> ResNet-18 and
# -> MobileNetV2; baseline, KD, AT, CAT-KD, TaT (last stage) and TaT with the official
# scripts' decoder tap, CWD, DKD, DIST and FitNet. 100 epochs each on GPUs (`--commands --gpus 4`).
dataset = 'voc'
config_dir = '../seg'
metric = 'mIoU'
seeds = [0]
pairs = [('deeplabv3p_r101', 'deeplabv3p_r18', 'deeplabv3p_r101_r18'),
         ('deeplabv3p_r101', 'deeplabv3p_mbv2', 'deeplabv3p_r101_mbv2')]
methods = 'registered'   # every registered method with a config for the pair
variants = {'TaT': {'TaT (official protocol)': 'tat_official'}}
reference = 'reference_results.csv'
