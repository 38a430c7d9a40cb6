# Demo teacher of the few-digits task: CIFAR resnet20 on ALL the digits training images
# (1347), 30 epochs (the teacher of configs/demo/resnet20_digits.py, under the suite's
# dataset name 'fewdigits'); its students see a tenth of the images (resnet8_fewdigits.py).
_base_ = ['./resnet20_digits.py']
