# ImageNet KD recipe (MDistiller/CAT-KD): 100 epochs, total batch 512 (8 GPUs x 64),
# SGD m0.9, lr 0.2, wd 1e-4, x0.1 at epochs 30/60/90.
optim_wrapper = dict(constructor='ParamGroupsConstructor',  # kdbench/utils/param_groups.py
                     optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4))
param_scheduler = [dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90],
                        gamma=0.1)]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=512, enable=False)
