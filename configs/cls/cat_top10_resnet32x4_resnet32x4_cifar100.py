# CAT only, partial transfer (CAT-KD Fig. 4 left): the CAMs of the teacher's 10
# highest-scoring classes per image. Fig. 4 sweeps n: change num_cams.
_base_ = ['./cat_resnet32x4_resnet32x4_cifar100.py']
model = dict(methods=dict(cat=dict(num_cams=10, strategy='top')))
