# CAT only on a reduced training set (CAT-KD Fig. 4 right): classes 0..49, all their
# images; evaluated on the whole test set (T) and on the unseen classes 50..99 (S,
# reported as accuracy/unseen_top1). Fig. 4 sweeps the class count and the rate.
_base_ = ['./cat_resnet32x4_resnet32x4_cifar100.py']
reserved_classes = 50
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ClassSubsetDataset', num_classes=reserved_classes, fraction=1.0,
    dataset={{_base_.train_dataloader.dataset}}))
val_evaluator = dict(subsets=dict(unseen=list(range(reserved_classes, 100))))
test_evaluator = val_evaluator
