# The ImageNet table (docs/reference.md §6): ResNet-34 -> ResNet-18 and ResNet-50 -> MobileNetV1;
# baseline, KD, AT, CAT-KD, TaT, DKD and DIST (+ TaT with KD for R34 -> R18 is
# configs/cls/tat_kd_resnet34_resnet18_imagenet.py). The ImageNet teachers are torchvision's
# files (teacher_ckpt); the teacher runs here retrain them if you want your own.
dataset = 'imagenet'
config_dir = '../cls'
metric = 'accuracy/top1'
seeds = [0]
pairs = [('resnet34', 'resnet18'), ('resnet50', 'mobilenetv1')]
methods = 'registered'   # every registered method with a config for the pair
reference = 'reference_results.csv'
