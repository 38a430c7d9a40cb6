# The embedded demo data: scikit-learn's digits (ships with the package), 16x16 RGB.
custom_imports = dict(imports=['tasks.classification'], allow_failed_imports=False)
data_preprocessor = dict(type='ImgDataPreprocessor', mean=[76.0] * 3, std=[95.0] * 3)
train_dataloader = dict(
    batch_size=64, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='train', size=16,
                 pipeline=[dict(type='RandomCrop', size=16, padding=2)]))
val_dataloader = dict(
    batch_size=256, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='DigitsDataset', split='test', size=16))
test_dataloader = val_dataloader
val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
