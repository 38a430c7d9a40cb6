# Demo segmentation schedule (CPU), the students': 2 epochs of 60 iterations (batch 8),
# AdamW lr 3e-3 wd 1e-4, poly decay (power 0.9) per iteration, validation at the end only
# (the ProgressHook prints one line per epoch; the leaf configs checkpoint the last
# epoch). From random weights AdamW gets much further than SGD in a few hundred
# iterations on these scenes (measured: SGD lr 0.03 and 0.1 still predicted background
# only after 120 iterations).
optim_wrapper = dict(constructor='ParamGroupsConstructor',  # kdbench/utils/param_groups.py
                     optimizer=dict(type='AdamW', lr=3e-3, weight_decay=1e-4))
param_scheduler = [dict(type='PolyLR', power=0.9, eta_min=0.0, by_epoch=True, begin=0,
                        end=2, convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
val_cfg = dict()
test_cfg = dict()
