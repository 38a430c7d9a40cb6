# ImageNet in class folders (data/imagenet/{train,val}/<wnid>/*.JPEG).
# Train: RandomResizedCrop 224 + flip; val: Resize 256 + CenterCrop 224; ImageNet mean/std.
custom_imports = dict(imports=['tasks.classification'], allow_failed_imports=False)
data_root = 'data/imagenet'
data_preprocessor = dict(type='ImgDataPreprocessor',
                         mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
# Workers persist across epochs; pin_memory takes effect only where CUDA is available
# (torch skips it on CPU-only machines). Throughput: tools/bench_loader.py.
train_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, split='train',
                 pipeline=[dict(type='RandomResizedCrop', size=224, antialias=True),
                           dict(type='RandomHorizontalFlip')]))
val_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='ImageFolderDataset', data_root=data_root, split='val',
                 pipeline=[dict(type='Resize', size=256, antialias=True),
                           dict(type='CenterCrop', size=224)]))
test_dataloader = val_dataloader
val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
