# The embedded demo suite (`make demo`): digits (ships with scikit-learn), CPU only.
# Teacher resnet20, student resnet8: baseline, KD, AT and CAT-KD, 30 epochs each.
teacher = dict(name='teacher (resnet20)', config='resnet20_digits.py')
runs = [
    dict(name='baseline (resnet8)', config='resnet8_digits.py'),
    dict(name='KD', config='kd_resnet20_resnet8_digits.py'),
    dict(name='AT', config='at_resnet20_resnet8_digits.py'),
    dict(name='CAT-KD', config='cat_kd_resnet20_resnet8_digits.py'),
]
baseline = 'baseline (resnet8)'
metric = 'accuracy/top1'
