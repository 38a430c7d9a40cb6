# The CIFAR-100 table distilled from the released teachers (RepDistiller's
# cifar_teachers/<name>_vanilla/ckpt_epoch_240.pth, also used by MDistiller and CAT-KD)
# instead of training them; where the files come from: docs/weights.md.
_base_ = ['./cifar100.py']
released_teachers = dict(path='cifar_teachers/{name}_vanilla/ckpt_epoch_240.pth',
                         names=dict(resnet50='ResNet50'))
