# CAT only with binarised teacher CAMs (CAT-KD §4.2, Fig. 6): docs/reference.md §3 beta 300.
_base_ = ['./cat_resnet32x4_resnet32x4_cifar100.py']
model = dict(methods=dict(cat=dict(beta=300.0, binarize=True)))
