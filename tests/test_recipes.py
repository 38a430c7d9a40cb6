"""Recipes: the optimizer groups and lr schedules the configs build match the papers' and
official scripts' recipes (values written once below, with their sources); the recipe
card (tools/recipe.py) and the docs table (docs/recipes.md) show what the configs build."""
import math
import os
import runpy
import sys

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from shared_setup import ROOT

import tasks.segmentation  # noqa: F401  (registers DeepLabV3+ and the seg datasets)
from kdbench.apis import load_config
from kdbench.apis.recipe import (TABLE_BEGIN, TABLE_END, build_card, build_meta_model,
                                 format_card, lr_rule, markdown_table, replace_table,
                                 shipped_configs, table_row)
from kdbench.registry import PARAM_SCHEDULERS
from kdbench.utils.param_groups import ParamGroupsConstructor, param_group_table

DOCS = os.path.join(ROOT, 'docs', 'recipes.md')

# ------------------------------------------------------------------- the recipes, once
# Module prefix -> lr of the optimizer group holding its parameters.
SEG = 'student.net.'
ENC, HEAD = ('net.encoder',), ('net.decoder', 'net.segmentation_head')


def _seg_groups(lr: float, distiller: bool = True, method: str = '') -> dict:
    """Official DeepLabV3+ groups: encoder at the script lr, head at 10x, method 1x."""
    prefix = 'student.' if distiller else ''
    groups = {prefix + m: lr for m in ENC}
    groups.update({prefix + m: 10 * lr for m in HEAD})
    if method:
        groups[f'methods.{method}'] = lr
    return groups


def _recipe(groups, schedule, epochs, batch, optimizer, source):
    return dict(groups=groups, schedule=schedule, epochs=epochs, batch=batch,
                optimizer=optimizer, source=source)


SGD_SEG = dict(type='SGD', momentum=0.9, nesterov=True, weight_decay=5e-4)
POLY, COSINE = ('PolyLR', 'iter', 0.9), ('CosineAnnealingLR', 'iter', None)
TAT_SEG = {  # (dataset, student): (script, lr, batch): TaT-seg train_<dataset>_<net>.sh
    ('voc', 'r18'): ('train_voc_resnet18.sh', 0.007, 16),
    ('voc', 'mbv2'): ('train_voc_mobilenet.sh', 0.004, 12),
    ('cocostuff10k', 'r18'): ('train_cocostuff10k_resnet18.sh', 0.01, 16),
    ('cocostuff10k', 'mbv2'): ('train_cocostuff10k_mobilenet.sh', 0.007, 12),
}
RECIPES = {
    'seg/deeplabv3p_r101_voc.py': _recipe(
        _seg_groups(0.007, False), POLY, 50, 16, dict(SGD_SEG, nesterov=False),
        'pytorch-deeplab-xception train_voc.sh (the VOC teacher TaT-seg distils from)'),
    'seg/deeplabv3p_r101_cocostuff10k.py': _recipe(
        _seg_groups(0.004, False), POLY, 200, 16, SGD_SEG,
        'TaT-seg train_cocostuff10k_baseline.sh'),
}
for _dataset in ('voc', 'cocostuff10k'):
    for _student in ('r18', 'mbv2'):
        _script, _lr, _batch = TAT_SEG[(_dataset, _student)]
        for _kind in ('tat', 'tat_official'):
            RECIPES[f'seg/{_kind}_deeplabv3p_r101_{_student}_{_dataset}.py'] = _recipe(
                _seg_groups(_lr, method='tat'), COSINE, 100, _batch, SGD_SEG,
                f'TaT-seg {_script}')
        RECIPES[f'seg/deeplabv3p_{_student}_{_dataset}.py'] = _recipe(
            _seg_groups(0.007, False), POLY, 100, 16, SGD_SEG,
            'TaT-seg train_comp.sh (the KD/AT comparison schedule; no baseline script)')
        for _method in ('kd', 'at', 'cat_kd'):
            RECIPES[f'seg/{_method}_deeplabv3p_r101_{_student}_{_dataset}.py'] = _recipe(
                _seg_groups(0.007), POLY, 100, 16, SGD_SEG, 'TaT-seg train_comp.sh')

CIFAR_STEP = ('MultiStepLR', 'epoch', (150, 180, 210))
IMAGENET_STEP = ('MultiStepLR', 'epoch', (30, 60, 90))
SGD_CIFAR = dict(type='SGD', momentum=0.9, weight_decay=5e-4)
# CAT-KD paper / official configs: per-pair lr (0.01 for ShuffleNet/MobileNet students).
CAT_KD_CIFAR = {'resnet56_resnet20': 0.05, 'resnet110_resnet32': 0.05,
                'resnet32x4_resnet8x4': 0.05, 'wrn_40_2_wrn_16_2': 0.05,
                'wrn_40_2_wrn_40_1': 0.05, 'vgg13_vgg8': 0.05,
                'resnet32x4_shufflenetv1': 0.01, 'resnet32x4_shufflenetv2': 0.01,
                'wrn_40_2_shufflenetv1': 0.01, 'vgg13_mobilenetv2': 0.01,
                'resnet50_mobilenetv2': 0.01}
for _pair, _lr in CAT_KD_CIFAR.items():
    RECIPES[f'cls/cat_kd_{_pair}_cifar100.py'] = _recipe(
        {'student': _lr}, CIFAR_STEP, 240, 64, SGD_CIFAR,
        'CAT-KD (CVPR 2023) CIFAR-100 recipe: 240 epochs, batch 64, x0.1 at 150/180/210')
for _pair in ('resnet34_resnet18', 'resnet50_mobilenetv1'):
    RECIPES[f'cls/cat_kd_{_pair}_imagenet.py'] = _recipe(
        {'student': 0.2}, IMAGENET_STEP, 100, 64, dict(type='SGD', momentum=0.9,
                                                       weight_decay=1e-4),
        'CAT-KD ImageNet: 100 epochs, batch 512 (8 x 64), lr 0.2, wd 1e-4')
for _name in ('tat', 'tat_kd'):
    RECIPES[f'cls/{_name}_resnet34_resnet18_imagenet.py'] = _recipe(
        {'student': 1.6e-3, 'methods.tat': 1.6e-3}, IMAGENET_STEP, 100, 64,
        dict(type='AdamW', weight_decay=5e-4),
        'official TaT ImageNet config: AdamW lr 1.6e-3, wd 5e-4, x0.1 at 30/60/90')

EPOCH_LENGTH = 100     # iterations per epoch used to build the schedulers


def _build(path: str):
    cfg = load_config(os.path.join(ROOT, 'configs', path))
    with DefaultScope.overwrite_default_scope('kdbench'):
        model, _ = build_meta_model(cfg)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper.to_dict())
        schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper),
                                             default_args=dict(epoch_length=EPOCH_LENGTH))
                      for s in cfg.param_scheduler]
    return cfg, model, wrapper.optimizer, schedulers


def _lr_of(model, optimizer, prefix: str) -> float:
    """The lr of the groups holding the parameters under ``prefix`` (one value)."""
    lr_of = {id(p): g['lr'] for g in optimizer.param_groups for p in g['params']}
    found = {lr_of[id(p)] for n, p in model.named_parameters()
             if n.startswith(prefix + '.') and p.requires_grad}
    assert len(found) == 1, (prefix, found)
    return found.pop()


def _factor(kind: str, arg, t: float) -> float:
    """The official lr factor at fraction ``t`` of training (step: at epoch ``t``)."""
    if kind == 'PolyLR':
        return (1 - t) ** arg
    if kind == 'CosineAnnealingLR':
        return 0.5 * (1 + math.cos(math.pi * t))
    return 0.1 ** sum(t >= m for m in arg)


def test_every_claimed_recipe_has_a_config():
    assert len(RECIPES) == 2 + 4 * 2 + 4 + 4 * 3 + 11 + 2 + 2
    for path in RECIPES:
        assert os.path.isfile(os.path.join(ROOT, 'configs', path)), path


@pytest.mark.parametrize('path', sorted(RECIPES))
def test_config_builds_the_recipe(path):
    recipe = RECIPES[path]
    cfg, model, optimizer, schedulers = _build(path)
    # Learning rate per module group, then the other optimizer options of every group.
    lrs = {prefix: _lr_of(model, optimizer, prefix) for prefix in recipe['groups']}
    assert lrs == pytest.approx(recipe['groups']), recipe['source']
    options = dict(recipe['optimizer'])
    assert type(optimizer).__name__ == options.pop('type')
    for group in optimizer.param_groups:
        assert {k: group[k] for k in options} == options, recipe['source']
    optimized = {id(p) for g in optimizer.param_groups for p in g['params']}
    if hasattr(model, 'teacher'):        # the frozen teacher is not handed to the optimizer
        assert not optimized & {id(p) for p in model.teacher.parameters()}
    # Length and batch.
    assert cfg.train_cfg.max_epochs == recipe['epochs']
    assert cfg.train_dataloader.batch_size == recipe['batch']
    # Schedule: one scheduler of the recipe's kind, updated per iteration or epoch, and the
    # lr of every group at a few points of training equal to the recipe's formula.
    kind, unit, arg = recipe['schedule']
    assert [type(s).__name__ for s in schedulers] == [kind]
    (scheduler,) = schedulers
    assert scheduler.by_epoch == (unit == 'epoch')
    steps = recipe['epochs'] * (EPOCH_LENGTH if unit == 'iter' else 1)
    base = [g['lr'] for g in optimizer.param_groups]
    done = 0
    # mmengine's PolyLR reaches 0 at step T - 1 (the official scheduler's T is the number
    # of iterations): relative differences below 1e-3 at 3/4 of 100+ epochs of 100
    # iterations (docs/recipes.md).
    tolerance = 1e-3 if kind == 'PolyLR' else 1e-9
    for point in (steps // 4, steps // 2, 3 * steps // 4):
        while done < point:
            scheduler.step()
            done += 1
        t = done / steps if unit == 'iter' else done
        expected = [b * _factor(kind, arg, t) for b in base]
        assert [g['lr'] for g in optimizer.param_groups] == pytest.approx(expected,
                                                                          rel=tolerance)


# ------------------------------------------------------------------------ the card

TAT_VOC = os.path.join(ROOT, 'configs', 'seg', 'tat_official_deeplabv3p_r101_r18_voc.py')


def test_card_of_the_official_tat_voc_config():
    card = build_card(TAT_VOC)
    groups = {r['modules']: r['lr'] for r in card['groups']}
    assert groups == pytest.approx({'student.net.encoder': 0.007,
                                    'student.net.decoder, student.net.segmentation_head': 0.07,
                                    'methods.tat': 0.007})
    assert card['batch'] == 16 and card['epochs'] == 100
    assert card['per_epoch'] == 10582 // 16       # VOC aug train_aug, drop_last
    assert card['schedule'] == ['CosineAnnealingLR: T_max 100 epochs, eta_min 0; epochs '
                                '0-100, updated per iteration']
    assert card['weights'] == {'model.student.encoder_ckpt':
                               'checkpoints/resnet18-f37072fd.pth',
                               'model.teacher_ckpt': 'checkpoints/voc/deeplabv3p_r101.pth'}
    text = format_card(card)
    for line in ('batch: 16 per process x 1 process(es) = 16 effective',
                 'tap (512x512 input): tat: decoder_pre_relu of the student = '
                 'net.decoder.block2.1, 256 ch, stride 4, shape [1, 256, 128, 128]',
                 'frozen, not optimized: teacher.* (346 tensors)'):
        assert line in text
    assert 'loss_tat: TaT(' in text and 'patches=(16, 16), groups=64' in text
    # Four processes: effective batch 64, a quarter of the iterations.
    card = build_card(TAT_VOC, gpus=4)
    assert card['per_epoch'] == 10582 // 64
    assert 'x 4 process(es) = 64 effective' in format_card(card)


def test_recipe_tool_prints_the_card(capsys, monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['recipe.py', TAT_VOC])
    runpy.run_path(os.path.join(ROOT, 'tools', 'recipe.py'), run_name='__main__')
    out = capsys.readouterr().out
    table = [line.split() for line in out.splitlines() if line.startswith('  ')]
    assert ['0', 'student.net.encoder', '60', '11.18', 'M', '0.007', '0.0005', '0.9',
            'True'] in table
    assert ['2', 'methods.tat', '9', '0.20', 'M', '0.007', '0.0005', '0.9', 'True'] in table
    assert 'CosineAnnealingLR' in out and 'updated per iteration' in out


def test_param_group_table_and_constructor_without_paramwise_cfg(tiny_classifier_cfg,
                                                                 teacher_ckpt):
    """No paramwise_cfg: one group of trainable tensors, the frozen teacher left out."""
    from kdbench.registry import MODELS
    model = MODELS.build(dict(type='Distiller', student=tiny_classifier_cfg(),
                              teacher=tiny_classifier_cfg(),
                              teacher_ckpt=teacher_ckpt(tiny_classifier_cfg()),
                              methods=dict(kd=dict(type='KD'))))
    wrapper = ParamGroupsConstructor(dict(optimizer=dict(type='SGD', lr=0.1)))(model)
    (group,) = wrapper.optimizer.param_groups
    assert {id(p) for p in group['params']} == {id(p) for p in model.student.parameters()}
    from kdbench.utils.param_groups import param_group_rows
    table = param_group_table(param_group_rows(model, wrapper.optimizer)).splitlines()
    assert table[0].split() == ['group', 'modules', 'tensors', 'values', 'lr',
                                'weight_decay', 'momentum', 'nesterov']
    assert table[1].split()[:3] == ['0', 'student', str(len(group['params']))]


# ---------------------------------------------------------------------- docs/recipes.md

def _docs_rows():
    with open(DOCS) as f:
        text = f.read()
    table = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0]
    return text, [line for line in table.strip().splitlines()[2:]]


def test_docs_table_lists_every_shipped_config():
    _, rows = _docs_rows()
    listed = [row.split('|')[1].strip().strip('`') for row in rows]
    expected = [os.path.relpath(p, ROOT) for p in shipped_configs(os.path.join(ROOT, 'configs'))]
    assert listed == expected, 'regenerate: python tools/recipe.py --all --markdown ' \
                               'docs/recipes.md'


@pytest.mark.parametrize('path', ['configs/seg/tat_official_deeplabv3p_r101_r18_voc.py',
                                  'configs/seg/deeplabv3p_r101_cocostuff10k.py',
                                  'configs/cls/cat_kd_resnet32x4_shufflenetv1_cifar100.py',
                                  'configs/cls/cat_kd_convnext_tiny_resnet18_imagenet.py',
                                  'configs/seg/kd_deeplabv3p_r101_convnext_atto_voc.py',
                                  'configs/demo/seg/kd_deeplabv3p_r34_r18_digitseg.py'])
def test_docs_rows_match_the_configs(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    _, rows = _docs_rows()
    row = '| ' + ' | '.join(table_row(build_card(path, taps=False))) + ' |'
    assert row in rows, f'docs/recipes.md is stale for {path}: regenerate it with ' \
                        'python tools/recipe.py --all --markdown docs/recipes.md'


@pytest.mark.slow
def test_docs_table_is_regenerated(monkeypatch):
    monkeypatch.chdir(ROOT)
    text, _ = _docs_rows()
    assert replace_table(text, markdown_table(shipped_configs())) == text, \
        'regenerate: python tools/recipe.py --all --markdown docs/recipes.md'


def test_replace_table_needs_the_markers():
    assert replace_table(f'a\n{TABLE_BEGIN}\nold\n{TABLE_END}\nb', 'new\n') == \
        f'a\n{TABLE_BEGIN}\nnew\n{TABLE_END}\nb'
    with pytest.raises(ValueError, match='markers'):
        replace_table('no markers here', 'new\n')


def test_meta_build_reads_no_weight_file(tmp_path):
    """The card's model is built without the files the config names (none exist here)."""
    cfg = load_config(TAT_VOC)
    assert not os.path.exists(cfg.model.teacher_ckpt)
    model, files = build_meta_model(cfg)
    assert set(files) == {'model.student.encoder_ckpt', 'model.teacher_ckpt'}
    assert all(p.device == torch.device('meta') for p in model.parameters())
    with pytest.raises(RuntimeError, match='load_teacher=False'):   # a card, never a run
        model.teacher_forward(torch.empty(1, 3, 64, 64, device='meta'))


def test_the_card_states_the_batch_the_lr_is_used_at():
    few = os.path.join(ROOT, 'configs', 'demo', 'kd_resnet20_resnet8_fewdigits.py')
    line = next(x for x in format_card(build_card(few, taps=False)).splitlines()
                if x.startswith('batch:'))
    assert line.startswith('batch: 32 per process x 1 process(es) = 32 effective (lr as '
                           'configured, used at batch 32)'), line
    assert '64' not in line
    imagenet = os.path.join(ROOT, 'configs', 'cls', 'cat_kd_resnet34_resnet18_imagenet.py')
    text = format_card(build_card(imagenet, taps=False))
    assert ('64 effective (lr as configured, used at batch 64, set for batch 512 '
            '(auto_scale_lr.base_batch_size): --cfg-options auto_scale_lr.enable=True scales '
            'it linearly to 64)') in text
    assert '512 effective (lr as configured, used at batch 512)' in \
        format_card(build_card(imagenet, gpus=8, taps=False))
    assert lr_rule(128, dict(base_batch_size=64, enable=True)) == \
        'lr scaled linearly from base batch 64 to 128 (x 128/64)'
    assert lr_rule(16, None) == 'lr as configured, used at batch 16'
