# DeepLabV3+ schedule of the official TaT-seg comparison script (train_comp.sh: KD, AT, ...
# on the same DeepLabV3+ code): 100 epochs at batch 16, SGD momentum 0.9 nesterov, wd 5e-4,
# poly decay (power 0.9) updated every iteration. Learning-rate groups as in that code
# (train_with_distillation_*.py, utils/lr_scheduler.py): `lr` is the encoder's (backbone)
# lr, the head (ASPP + decoder + segmentation head) trains at 10x, distillation-method
# parameters (methods.*, e.g. TaT's embeddings) at 1x. `tools/recipe.py CONFIG` prints the
# resulting groups; docs/recipes.md lists every config and the differences from the
# official scripts. SyncBN when distributed.
optim_wrapper = dict(
    constructor='ParamGroupsConstructor',
    optimizer=dict(type='SGD', lr=0.007, momentum=0.9, nesterov=True, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'net.decoder': dict(lr_mult=10.0),
                                    'net.segmentation_head': dict(lr_mult=10.0)}))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=True, begin=0,
                        end=100, convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16, enable=False)
sync_bn = 'torch'
