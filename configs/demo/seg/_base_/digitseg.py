# The embedded segmentation demo data: synthetic 64x64 scenes of 3-5 scikit-learn digits,
# 16-28 px each, light digits on dark noisy backgrounds (DigitsSegmentationDataset; ships
# with scikit-learn, made in memory in ~1 s, no download), 11 classes (background,
# '0'..'9'); 480 train / 200 test scenes built from disjoint digit images.
# No augmentation: every scene already places its digits at random positions, sizes and
# colours (a horizontal flip would mirror the digits). ImageNet mean/std normalisation
# in the model's data preprocessor, as the VOC configs.
custom_imports = dict(imports=['tasks.segmentation'], allow_failed_imports=False)
data_preprocessor = dict(type='ImgDataPreprocessor',
                         mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
scene_size = 64
scenes = dict(digits_per_image=(3, 5), digit_sides=(16, 28))
# drop_last: a last batch of one image would fail in the ASPP pooling branch's BatchNorm.
train_dataloader = dict(
    batch_size=8, num_workers=0, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='kdbench.seg_collate'),
    dataset=dict(type='DigitsSegmentationDataset', split='train', num_images=480,
                 size=scene_size, **scenes))
val_dataloader = dict(
    batch_size=50, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='kdbench.seg_collate'),
    dataset=dict(type='DigitsSegmentationDataset', split='test', num_images=200,
                 size=scene_size, **scenes))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', ignore_index=255)
test_evaluator = val_evaluator
