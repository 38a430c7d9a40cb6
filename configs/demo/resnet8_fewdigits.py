# Demo student baseline of the few-digits task: CIFAR resnet8 from scratch on a tenth of
# the digits training images (the first 10% of each class in dataset order: 130 images,
# 13 per class), while its teacher saw all 1347: a data-starved student, the setting of
# CAT-KD's reduced-data study (Fig. 4/7), so the teacher leads and distillation has room.
# Test: the same 450 test images as the full task, evaluated once at the end with the
# weights chosen on validation: 450 of the 1217 training images the students do not use
# (stratified, split seed 0; docs/validation.md), so the students' choices (best epoch,
# the demo suite's grids) never look at the test split.
# Schedule for this scale (every student of the task): 150 epochs of 5 iterations (batch
# 32; lr 0.05 = the teacher's 0.1 scaled to the batch), SGD m0.9 wd 5e-4, cosine decay,
# validation every 10 epochs; the same number of images seen as 15 epochs of the full set.
# One loader worker: the random crops come from per-(seed, epoch, rank, worker)
# streams (kdbench/hooks/worker_seed.py), the same for every student of a seed whatever its
# model draws, so the students can train as one cohort (tools/benchmark.py --cohort,
# docs/cohorts.md) with the results of their runs alone.
_base_ = ['./resnet8_digits.py']
train_dataloader = dict(
    batch_size=32, num_workers=1,
    dataset=dict(_delete_=True, type='ClassSubsetDataset', num_classes=10, fraction=0.1,
                 dataset={{_base_.train_dataloader.dataset}}))
optim_wrapper = dict(optimizer=dict(lr=0.05))
auto_scale_lr = dict(base_batch_size=32)      # the batch lr 0.05 is set for
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, T_max=150, eta_min=0.0)]
train_cfg = dict(max_epochs=150, val_interval=10)
default_hooks = dict(checkpoint=dict(interval=150))
validation = dict(split='holdout', source='unused', size=450)
