# The Pascal VOC table (docs/reference.md §6, TaT paper): DeepLabV3+ ResNet-101 -> ResNet-18 and
# -> MobileNetV2; baseline, KD, AT, CAT-KD, TaT (last stage) and TaT with the official
# scripts' decoder tap, CWD, DKD and DIST. 100 epochs each on GPUs (`--commands --gpus 4`).
dataset = 'voc'
config_dir = '../seg'
metric = 'mIoU'
seeds = [0]
pairs = [('deeplabv3p_r101', 'deeplabv3p_r18', 'deeplabv3p_r101_r18'),
         ('deeplabv3p_r101', 'deeplabv3p_mbv2', 'deeplabv3p_r101_mbv2')]
methods = {'KD': 'kd', 'AT': 'at', 'CAT-KD': 'cat_kd', 'TaT': 'tat',
           'TaT (official protocol)': 'tat_official', 'CWD': 'cwd', 'DKD': 'dkd', 'DIST': 'dist'}
reference = 'reference_results.csv'
