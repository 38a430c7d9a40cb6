# DeepLabV3+ schedule (docs/reference.md §5): 100 epochs at batch 16, SGD momentum 0.9 nesterov,
# wd 5e-4; the encoder learns at 0.1x the head's lr (head lr = 10x backbone lr); poly
# decay (power 0.9) updated every iteration. lr 0.01 (DeepLabV3+ reference code default;
# the TaT configs set their scripts' lr). SyncBN when distributed.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={'net.encoder': dict(lr_mult=0.1)}))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=True, begin=0,
                        end=100, convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=16, enable=False)
sync_bn = 'torch'
