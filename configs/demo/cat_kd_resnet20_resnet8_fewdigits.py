# Demo CAT-KD on the few-digits task with the CIFAR ResNet-family setting (res56->res20:
# beta 0.7, r 2, not normalised; bias-free student classifier, CE 1; docs/reference.md,
# CAT-KD) and the student schedule of resnet8_fewdigits.py (150 epochs, batch 32, lr 0.05).
_base_ = ['./_base_/resnet20_resnet8_fewdigits.py']
model = dict(student=dict(classifier_bias=False),
             methods=dict(cat_kd=dict(type='CATKD', beta=0.7, resolution=2, normalize=False)))
