# The test-only pixel-regression task (tests/third_task): data, schedule, runtime.
_base_ = ['../../../configs/_base_/default_runtime.py']
custom_imports = dict(imports=['third_task'], allow_failed_imports=False)
data_preprocessor = dict(type='ImgDataPreprocessor', mean=[60.0] * 3, std=[60.0] * 3)
train_dataloader = dict(
    batch_size=8, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ShadedBlobs', split='train', num_images=32, size=32))
val_dataloader = dict(
    batch_size=16, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ShadedBlobs', split='test', num_images=16, size=32))
test_dataloader = val_dataloader
val_evaluator = dict(type='PixelMAE')
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, T_max=2, eta_min=0.0)]
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(rule='less'))
