# COCOStuff-10k v1.1 (docs/reference.md §5): data/cocostuff-10k/{images, annotations/*.mat,
# imageLists/{train,test}.txt}; 9000 train / 1000 test; ids remapped to 171 contiguous
# classes (label_mode='182' keeps the raw ids), 0 = unlabeled -> 255 ignored.
# Same augmentation and evaluation as the VOC recipe.
_base_ = ['./voc_aug.py']
data_root = 'data/cocostuff-10k'
train_dataloader = dict(
    dataset=dict(_delete_=True, type='COCOStuff10kDataset', data_root=data_root,
                 split='train', label_mode='171', pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='COCOStuff10kDataset', data_root=data_root,
                 split='test', label_mode='171', pipeline={{_base_.val_pipeline}}))
test_dataloader = val_dataloader
