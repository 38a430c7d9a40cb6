# CIFAR-100 from the official python files (data/cifar100/cifar-100-python/).
# Recipe augmentation: RandomCrop 32 pad 4 + horizontal flip; CIFAR-100 mean/std.
custom_imports = dict(imports=['tasks.classification'], allow_failed_imports=False)
data_root = 'data/cifar100'
data_preprocessor = dict(type='ImgDataPreprocessor',
                         mean=[129.30, 124.07, 112.43], std=[68.17, 65.39, 70.42])
# Workers persist across epochs; pin_memory takes effect only where CUDA is available
# (torch skips it on CPU-only machines). Throughput: tools/bench_loader.py.
train_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CIFAR100', data_root=data_root, split='train',
                 pipeline=[dict(type='RandomCrop', size=32, padding=4),
                           dict(type='RandomHorizontalFlip')]))
val_dataloader = dict(
    batch_size=256, num_workers=4, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CIFAR100', data_root=data_root, split='test'))
test_dataloader = val_dataloader
val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
