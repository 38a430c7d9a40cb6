# Pascal VOC 2012 + SBD aug (docs/reference.md §5): data/VOCdevkit/VOC2012/{JPEGImages,
# SegmentationClassAug, ImageSets/Segmentation/{train_aug,val}.txt}; 10582 train / 1449 val,
# 21 classes, 255 ignored. Train: flip 0.5, short side 513 x U[0.5, 2.0], pad (image 0,
# label 255), random 512 crop (smp needs sides divisible by 16), Gaussian blur p=0.5.
# Val: whole images (the standard; the official TaT code resizes to 513: set
# `val_pipeline` to tasks.segmentation.transforms.val_pipeline(513)). ImageNet mean/std
# normalisation happens in the model's data preprocessor.
custom_imports = dict(imports=['tasks.segmentation'], allow_failed_imports=False)
data_root = 'data/VOCdevkit/VOC2012'
crop_size = 512
data_preprocessor = dict(type='ImgDataPreprocessor',
                         mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
train_pipeline = [
    dict(type='HorizontalFlip', p=0.5),
    dict(type='SegRandomShortSideScale', base_size=513, scale_range=(0.5, 2.0)),
    dict(type='PadIfNeeded', min_height=crop_size, min_width=crop_size, position='top_left',
         border_mode=0, fill=0, fill_mask=255),         # border_mode 0 = cv2.BORDER_CONSTANT
    dict(type='RandomCrop', height=crop_size, width=crop_size),
    dict(type='GaussianBlur', blur_limit=0, sigma_limit=(0.1, 1.0), p=0.5),
]
val_pipeline = []
# Workers persist across epochs; pin_memory takes effect only where CUDA is available
# (torch skips it on CPU-only machines). Throughput: tools/bench_loader.py.
# drop_last: a last batch of one image would fail in the ASPP pooling branch's BatchNorm.
train_dataloader = dict(
    batch_size=16, num_workers=4, persistent_workers=True, pin_memory=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='kdbench.seg_collate'),
    dataset=dict(type='VOCAugDataset', data_root=data_root, split='train_aug',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=4, persistent_workers=True, pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='kdbench.seg_collate'),
    dataset=dict(type='VOCAugDataset', data_root=data_root, split='val',
                 pipeline=val_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', ignore_index=255)
test_evaluator = val_evaluator
