"""Every segmentation config parses, builds with small stand-ins, feeds its own data pipeline
(on tiny files in the official layouts) through its model and metric, and keeps the recipe;
2-iteration Runner runs of the baseline and each method, then teacher-free evaluation."""
import copy
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from seg_data import coco_maps, write_cocostuff, write_voc
from shared_setup import ROOT, shrink_to_iterations

import kdbench.distill  # noqa: F401  (registers the Distiller and methods)
import tasks.segmentation  # noqa: F401
from kdbench.apis import evaluate, load_config, train
from kdbench.apis.config import task_model_cfg
from kdbench.benchmark import Suite
from kdbench.distill import registered_methods
from kdbench.registry import FUNCTIONS, METRICS, MODELS
from kdbench.utils.checkpoint import load_local_checkpoint
from tasks.segmentation.segmentor import imagenet_weights
from tasks.segmentation.transforms import build_seg_pipeline

SEG_DIR = os.path.join(ROOT, 'configs', 'seg')
CONFIGS = sorted(glob.glob(os.path.join(SEG_DIR, '*.py')))
IDS = [os.path.basename(p) for p in CONFIGS]
SIDE = 64          # crop used instead of 512 to stay fast (larger where a method needs it)
ENCODER_FILES = {'resnet101': 'resnet101-63fe2227.pth', 'resnet18': 'resnet18-f37072fd.pth',
                 'mobilenet_v2': 'mobilenet_v2-b0353104.pth',
                 'tu-convnext_atto': 'convnext_atto_d2-01bb0f51.pth'}


@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp('segdata')
    write_voc(root / 'voc', n=3, sizes=[(40, 56), (48, 36), (40, 56)])
    write_cocostuff(root / 'coco', coco_maps())
    return {'VOCAugDataset': str(root / 'voc'), 'COCOStuff10kDataset': str(root / 'coco')}


def _side(cfg: Config) -> int:
    """The smallest crop that gives each TaT tap at least its patches/anchors per side."""
    side = SIDE
    for method in (cfg.model.get('methods') or {}).values():
        cells = max([*(method or {}).get('patches', ()), *(method or {}).get('anchors', ())],
                    default=0)
        if cells:
            tap = method.get('taps', ('last_stage',))[0]
            stride = 4 if tap.startswith('decoder') else 16
            side = max(side, cells * stride)
    return side


def _small_pipeline(pipeline, side):
    """The config's pipeline with the 512 crop / 513 base size replaced by ``side``."""
    out = []
    for t in copy.deepcopy(pipeline):
        for key in ('min_height', 'min_width', 'height', 'width', 'base_size'):
            if key in t:
                t[key] = side
        out.append(t)
    return out


def _stand_in(task: dict) -> dict:
    """The task model without ImageNet files and with ResNet-101 replaced by ResNet-18."""
    assert task['type'] == 'DeepLabV3PlusSegmentor'
    encoder = 'resnet18' if task['encoder'] == 'resnet101' else task['encoder']
    return dict(task, encoder=encoder, encoder_ckpt=None, encoder_weights=None)


def _model_cfg(cfg: Config, teacher_ckpt) -> dict:
    """The config's model with stand-in networks; a Distiller's teacher gets random weights
    (the ``teacher_ckpt`` fixture)."""
    model = cfg.model.to_dict()
    if model['type'] != 'Distiller':
        return _stand_in(model)
    model['student'], model['teacher'] = _stand_in(model['student']), _stand_in(model['teacher'])
    model['teacher_ckpt'] = teacher_ckpt(model['teacher'], seed=1)
    return model


def _loader(cfg: Config, name: str, data_roots: dict) -> dict:
    loader = cfg[name].to_dict()
    dataset = loader['dataset']
    dataset.update(data_root=data_roots[dataset['type']],
                   pipeline=_small_pipeline(dataset.get('pipeline') or [], _side(cfg)))
    loader.update(batch_size=2, num_workers=0, persistent_workers=False, pin_memory=False)
    return loader


def test_every_segmentation_config_is_found():
    """Every run of the VOC and COCOStuff-10k suites (tests/test_method_table.py pins them)
    is among the configs this file runs through."""
    assert len(CONFIGS) >= 38
    for dataset in ('voc', 'cocostuff10k'):
        suite = Suite(os.path.join(ROOT, 'configs', 'suites', f'{dataset}.py'), 'unused')
        assert len(suite.runs) == 21
        assert {os.path.basename(r.config) for r in suite.runs} <= set(IDS)


# Running data through DeepLabV3+ R101 + a student costs seconds per config: the default run
# covers every method and dataset with the R18 student; the MobileNetV2 ones are marked slow.
RUN_THROUGH = [pytest.param(p, marks=pytest.mark.slow) if '_mbv2_' in p else p for p in CONFIGS]


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_names_its_parts(path):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'kdbench'
    assert cfg.custom_imports['imports'] == ['tasks.segmentation']
    task = task_model_cfg(cfg.model)
    encoders = [task] + ([cfg.model.teacher] if cfg.model.type == 'Distiller' else [])
    assert all(m.output_stride == 16 for m in encoders)
    # A timm encoder's encoder_weights='imagenet' is timm's release (a URL).
    encoder_file = task.encoder_ckpt or imagenet_weights(task.encoder)
    assert os.path.basename(encoder_file) == ENCODER_FILES[task.encoder]
    if cfg.model.type == 'Distiller':
        assert cfg.model.teacher.encoder == 'resnet101'
        assert cfg.model.teacher.num_classes == task.num_classes
    for name in ('train_dataloader', 'val_dataloader'):
        assert FUNCTIONS.get(cfg[name].collate_fn.type) is not None
        build_seg_pipeline(cfg[name].dataset.get('pipeline'))    # every transform exists


@pytest.mark.parametrize('path', RUN_THROUGH, ids=IDS)
def test_config_builds_and_runs_its_data_through_model_and_metric(path, data_roots, teacher_ckpt):
    cfg = Config.fromfile(path)
    task = task_model_cfg(cfg.model)
    torch.manual_seed(0)
    model = MODELS.build(_model_cfg(cfg, teacher_ckpt))
    with DefaultScope.overwrite_default_scope('kdbench'):
        train_loader = Runner.build_dataloader(_loader(cfg, 'train_dataloader', data_roots))
        val_loader = Runner.build_dataloader(_loader(cfg, 'val_dataloader', data_roots))
    batch = next(iter(train_loader))
    assert batch['inputs'].shape == (2, 3, _side(cfg), _side(cfg))
    model.train()
    losses = model(**model.data_preprocessor(batch, training=True), mode='loss')
    methods = {f'loss_{n}' for n, m in cfg.model.get('methods', {}).items() if m is not None}
    assert set(losses) == {'loss_seg'} | methods
    assert all(torch.isfinite(v) for v in losses.values())

    model.eval()
    metric = METRICS.build(cfg.val_evaluator)
    metric.dataset_meta = val_loader.dataset.metainfo
    assert len(metric.dataset_meta['classes']) == task.num_classes
    for batch in val_loader:
        metric.process(batch, model.val_step(batch))
    result = metric.evaluate(len(val_loader.dataset))
    assert 0 <= result['mIoU'] <= 100


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_segmentation_recipe(path):
    cfg = Config.fromfile(path)
    # Epochs, lr and nesterov per official script: tests/test_recipes.py.
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'SGD' and optimizer.momentum == 0.9
    assert optimizer.weight_decay == 5e-4
    assert cfg.param_scheduler[0].type in ('PolyLR', 'CosineAnnealingLR')
    assert cfg.param_scheduler[0].convert_to_iter_based
    assert cfg.sync_bn == 'torch'
    assert cfg.train_dataloader.batch_size in (12, 16)
    assert cfg.auto_scale_lr.base_batch_size == cfg.train_dataloader.batch_size
    crops = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'RandomCrop']
    assert [(t.height, t.width) for t in crops] == [(512, 512)]
    # The official DeepLabV3+ groups: the encoder at the config's lr, the head at 10x.
    model = MODELS.build(_stand_in(task_model_cfg(cfg.model).to_dict()))
    with DefaultScope.overwrite_default_scope('kdbench'):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    lrs = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    assert lrs[id(next(model.net.encoder.parameters()))] == pytest.approx(optimizer.lr)
    assert lrs[id(next(model.net.decoder.aspp.parameters()))] == pytest.approx(10 * optimizer.lr)
    assert lrs[id(model.net.segmentation_head[0].weight)] == pytest.approx(10 * optimizer.lr)


# ------------------------------------------------------------------- Runner, end to end

def _iter_cfg(config: str, work_dir, data_roots, teacher_ckpt) -> Config:
    """The config on the tiny data with stand-in models, 2 iterations, then validation."""
    cfg = load_config(os.path.join(SEG_DIR, config), dict(log_level='WARNING'), str(work_dir))
    os.makedirs(work_dir, exist_ok=True)
    cfg.model = _model_cfg(cfg, teacher_ckpt)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name] = _loader(cfg, name, data_roots)
    return shrink_to_iterations(cfg)


# The baseline and every registered method with a VOC R101 -> R18 config (other datasets
# and students: test_config_builds_and_runs_its_data_through_model_and_metric).
TWO_ITERATIONS = [('deeplabv3p_r18_voc.py', {'loss_seg'})] + [
    (f'{e.config_prefix}_deeplabv3p_r101_r18_voc.py', {'loss_seg', f'loss_{e.config_prefix}'})
    for e in registered_methods()
    if f'{e.config_prefix}_deeplabv3p_r101_r18_voc.py' in IDS]


@pytest.mark.parametrize('config, losses', TWO_ITERATIONS)
def test_two_iterations_then_teacher_free_evaluation(tmp_path, data_roots, teacher_ckpt,
                                                     config, losses):
    cfg = _iter_cfg(config, tmp_path, data_roots, teacher_ckpt)
    runner = train(cfg)
    logged = {k[len('train/'):] for k in runner.message_hub.log_scalars if k.startswith('train/')}
    assert losses <= logged
    assert 0 <= runner.message_hub.get_scalar('val/mIoU').current() <= 100
    checkpoint = str(tmp_path / 'iter_2.pth')
    saved = load_local_checkpoint(checkpoint)['state_dict']
    assert not any(k.startswith('teacher.') for k in saved)
    # tools/test.py's path: the student alone, from the distillation config.
    eval_cfg = _iter_cfg(config, tmp_path / 'eval', data_roots, teacher_ckpt)
    metrics = evaluate(eval_cfg, checkpoint)
    assert set(metrics) == {'mIoU', 'mAcc', 'aAcc'}


def test_distillation_log_is_short(tmp_path, data_roots, teacher_ckpt):
    """A 3-iteration distillation log holds one line on the frozen teacher and one table of
    parameter groups, not a warning per teacher tensor and a line per trained tensor
    (issue 16, item 11)."""
    cfg = _iter_cfg('tat_official_deeplabv3p_r101_r18_voc.py', tmp_path, data_roots,
                    teacher_ckpt)
    cfg.log_level = 'INFO'
    cfg.train_cfg = dict(by_epoch=False, max_iters=3, val_interval=3)
    runner = train(cfg)
    with open(os.path.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read().splitlines()
    assert not [line for line in log if 'requires_grad=False' in line]
    assert not [line for line in log if 'paramwise_options' in line]
    frozen = [line for line in log if 'frozen, not optimized: teacher.*' in line]
    assert len(frozen) == 1 and '3 parameter groups' in frozen[0]
    start = log.index(frozen[0])
    assert log[start + 1].split()[:2] == ['group', 'modules']
    assert [row.split()[1].rstrip(',') for row in log[start + 2:start + 5]] == \
        ['student.net.encoder', 'student.net.decoder', 'methods.tat']
    # No other line names a teacher tensor or a trained tensor (mmengine wrote 346 + 181).
    assert not [line for line in log if 'teacher.net.' in line]
    assert not [line for line in log if 'student.net.encoder.' in line]
