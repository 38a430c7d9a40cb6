# Demo schedule: 30 epochs, SGD m0.9 lr 0.1 wd 5e-4, cosine decay; validate every 5 epochs.
optim_wrapper = dict(constructor='ParamGroupsConstructor',  # kdbench/utils/param_groups.py
                     optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, T_max=30, eta_min=0.0)]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64, enable=False)
