"""Every shipped config parses, names registered components and builds its model (with
small stand-in networks), its data pipeline feeds that model, and recipe values hold."""
import copy
import functools
import glob
import os

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image
from shared_setup import ROOT

import kdbench.distill  # noqa: F401  (registers the Distiller and methods)
import tasks.classification  # noqa: F401  (registers networks, datasets, metric)
from kdbench.apis import load_config
from kdbench.apis.config import task_model_cfg
from kdbench.benchmark import Suite
from kdbench.distill import registered_methods
from kdbench.registry import (DATASETS, HOOKS, METRICS, MODELS, PARAM_SCHEDULERS,
                              TRANSFORMS)

CONFIG_DIR = os.path.join(ROOT, 'configs')
ALL = sorted(p for p in glob.glob(os.path.join(CONFIG_DIR, '**', '*.py'), recursive=True)
             if '_base_' not in os.path.relpath(p, CONFIG_DIR).split(os.sep))


@functools.lru_cache(maxsize=None)
def _parsed(path: str) -> Config:
    return Config.fromfile(path)


def _is_suite(path: str) -> bool:
    """A suite file (kdbench.benchmark, in configs/suites/) names pairs and methods (or
    other suites) instead of defining a model."""
    return os.path.relpath(path, CONFIG_DIR).split(os.sep)[0] == 'suites'


def _task(path: str) -> str:
    """The task plugin a config loads (``tasks.<task>`` in its custom_imports)."""
    imports = [i for i in _parsed(path).custom_imports['imports'] if i.startswith('tasks.')]
    assert len(imports) == 1, (path, imports)
    return imports[0]


SUITES = [p for p in ALL if _is_suite(p)]
# Segmentation configs are checked by tests/segmentation/test_seg_configs.py.
CONFIGS = [p for p in ALL if p not in SUITES and _task(p) == 'tasks.classification']
IDS = [os.path.relpath(p, CONFIG_DIR) for p in CONFIGS]
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
KD_CIFAR = os.path.join(CONFIG_DIR, 'cls', 'kd_resnet32x4_resnet8x4_cifar100.py')
AT_CIFAR = os.path.join(CONFIG_DIR, 'cls', 'at_resnet32x4_resnet8x4_cifar100.py')


def _config(path: str) -> Config:
    """A private copy of the parsed config (parsing is cached)."""
    return copy.deepcopy(_parsed(path))


def _plain(cfg) -> dict:
    return cfg.to_dict() if isinstance(cfg, ConfigDict) else copy.deepcopy(cfg)


def _stand_in_task(task: dict) -> dict:
    """The task model with its network replaced by resnet8 of the same class count (a
    ``TimmClassifier`` by an ``ImageClassifier`` with the same classifier options)."""
    if task['type'] == 'TimmClassifier':
        import timm
        assert timm.is_model(task['model_name']), f"timm has no model {task['model_name']}"
        kept = {k: task[k] for k in ('data_preprocessor', 'classifier_bias', 'label_smoothing')
                if k in task}
        return dict(type='ImageClassifier', **kept,
                    net=dict(type='resnet8', num_classes=task['num_classes']))
    assert task['type'] == 'ImageClassifier'
    net = task['net']
    assert MODELS.get(net['type']) is not None, f"unregistered network {net['type']}"
    assert 'num_classes' in net
    return dict(task, net=dict(type='resnet8', num_classes=net['num_classes']))


def _stand_in_model(model_cfg, tmp_path) -> dict:
    """The config's model with small networks; a Distiller gets a written teacher file."""
    cfg = _plain(model_cfg)
    assert MODELS.get(cfg['type']) is not None
    if cfg['type'] != 'Distiller':
        return _stand_in_task(cfg)
    assert isinstance(cfg['teacher_ckpt'], str) and cfg['teacher_ckpt']
    assert _task_classes(cfg['student']) == _task_classes(cfg['teacher'])
    cfg['student'] = _stand_in_task(cfg['student'])
    cfg['teacher'] = _stand_in_task(cfg['teacher'])
    torch.manual_seed(1)
    teacher = MODELS.build(cfg['teacher'])
    path = tmp_path / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, path)
    cfg['teacher_ckpt'] = str(path)
    return cfg


def _task_classes(task) -> int:
    return task['num_classes'] if task['type'] == 'TimmClassifier' else task['net']['num_classes']


def _num_classes(model_cfg) -> int:
    return _task_classes(model_cfg['student'] if model_cfg['type'] == 'Distiller'
                         else model_cfg)


def _net_name(task) -> str:
    """The network a task model config builds: its ``net`` type or timm model name."""
    return task['model_name'] if task['type'] == 'TimmClassifier' else task['net']['type']


def test_enough_configs_are_found():
    assert len(ALL) >= 8
    assert len(CONFIGS) >= 8
    # Every config is a suite or belongs to a task whose tests check it.
    assert all(p in SUITES or _task(p) in ('tasks.classification', 'tasks.segmentation')
               for p in ALL)
    assert KD_CIFAR in CONFIGS and AT_CIFAR in CONFIGS


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_parses_and_names_registered_components(path):
    cfg = _config(path)
    assert cfg.default_scope == 'kdbench'
    assert 'tasks.classification' in cfg.custom_imports['imports']
    for loader in LOADERS:
        dataset = cfg[loader].dataset
        assert DATASETS.get(dataset.type) is not None, (loader, dataset.type)
        for transform in dataset.get('pipeline') or []:
            assert TRANSFORMS.get(transform['type']) is not None, transform
    for evaluator in ('val_evaluator', 'test_evaluator'):
        assert METRICS.get(cfg[evaluator].type) is not None
    for name, hook in cfg.default_hooks.items():
        assert HOOKS.get(hook['type']) is not None, name
    # A Distiller uses its student's preprocessor unless it sets its own.
    assert task_model_cfg(cfg.model).data_preprocessor.type == 'ImgDataPreprocessor'


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_model_builds_with_stand_in_networks(path, tmp_path):
    cfg = _config(path)
    model_cfg = _stand_in_model(cfg.model, tmp_path)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    assert type(model).__name__ == cfg.model.type
    preprocessor = model.data_preprocessor
    assert type(preprocessor).__name__ == 'ImgDataPreprocessor'
    assert torch.allclose(preprocessor.mean.flatten(),
                          torch.tensor(task_model_cfg(cfg.model).data_preprocessor.mean))

    k = _num_classes(cfg.model)
    inputs, labels = torch.randn(2, 3, 16, 16), torch.tensor([0, k - 1])
    model.train()
    losses = model(inputs, dict(label=labels), mode='loss')
    expected = {'loss_cls'}
    if cfg.model.type == 'Distiller':
        methods = {n for n, m in cfg.model.methods.items() if m is not None}
        assert set(model.methods) == methods and methods
        expected |= {f'loss_{n}' for n in methods}
        assert model.student_loss_weight == cfg.model.get('student_loss_weight', 1.0)
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    assert model(inputs).shape == (2, k)

    # The plain task model of the config (what tools/test.py evaluates) builds alone.
    task = MODELS.build(_stand_in_task(_plain(task_model_cfg(cfg.model))))
    assert type(task).__name__ == 'ImageClassifier'
    assert type(task.data_preprocessor).__name__ == 'ImgDataPreprocessor'
    if cfg.model.type == 'Distiller':
        task.load_state_dict(model.student.state_dict())


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_schedule_builds(path):
    cfg = _config(path)
    model = MODELS.build(dict(type='ImageClassifier', net=dict(type='resnet8',
                                                               num_classes=3)))
    with DefaultScope.overwrite_default_scope('kdbench'):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        schedulers = [PARAM_SCHEDULERS.build(dict(s, optimizer=optim_wrapper))
                      for s in cfg.param_scheduler]
    assert schedulers
    assert cfg.train_cfg.max_epochs > 0 and cfg.train_cfg.by_epoch


# ---------------------------------------------------------------- data through the model

@pytest.fixture(scope='module')
def data_roots(tmp_path_factory):
    """Tiny CIFAR-100 pickles and a tiny image folder, for every dataset with a data_root."""
    import pickle

    import numpy as np
    root = tmp_path_factory.mktemp('data')
    rng = np.random.default_rng(0)
    cifar = root / 'cifar' / 'cifar-100-python'
    cifar.mkdir(parents=True)
    for split in ('train', 'test'):
        with open(cifar / split, 'wb') as f:
            pickle.dump({'data': rng.integers(0, 256, (6, 3072), dtype=np.uint8),
                         'fine_labels': [0, 1, 2, 97, 98, 99],
                         'coarse_labels': [0] * 6, 'filenames': ['x'] * 6}, f)
    with open(cifar / 'meta', 'wb') as f:
        pickle.dump({'fine_label_names': [str(i) for i in range(100)],
                     'coarse_label_names': [str(i) for i in range(20)]}, f)
    for split in ('train', 'val'):
        for cls in ('n01', 'n02'):
            folder = root / 'folders' / split / cls
            folder.mkdir(parents=True)
            for k in range(2):
                Image.fromarray(rng.integers(0, 256, (40 + k, 50, 3), dtype=np.uint8)).save(
                    folder / f'{k}.JPEG', format='JPEG')
    return {'CIFAR100': str(root / 'cifar'), 'ImageFolderDataset': str(root / 'folders')}


_DATASETS = {}


def _dataset(dataset_cfg: dict, data_roots: dict):
    """Build a config's dataset on the tiny data (cached: the digits set takes ~1 s)."""
    cfg = _plain(dataset_cfg)
    if 'data_root' in cfg:
        cfg['data_root'] = data_roots[cfg['type']]
    if 'dataset' in cfg:          # a wrapper (e.g. ClassSubsetDataset): its inner dataset
        cfg['dataset'] = _plain(cfg['dataset'])
        if 'data_root' in cfg['dataset']:
            cfg['dataset']['data_root'] = data_roots[cfg['dataset']['type']]
    key = repr(sorted(cfg.items()))
    if key not in _DATASETS:
        _DATASETS[key] = DATASETS.build(cfg)
    return _DATASETS[key]


def _expected_side(dataset_cfg) -> int:
    if 'dataset' in dataset_cfg:
        return _expected_side(dataset_cfg.dataset)
    sizes = [t['size'] for t in dataset_cfg.get('pipeline') or [] if 'size' in t]
    if sizes and isinstance(sizes[-1], int) and dataset_cfg.pipeline[-1].type != 'Resize':
        return sizes[-1]
    return {'CIFAR100': 32}.get(dataset_cfg.type, dataset_cfg.get('size'))


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_config_dataloaders_feed_the_model(path, tmp_path, data_roots):
    cfg = _config(path)
    model = MODELS.build(_stand_in_model(cfg.model, tmp_path))
    for loader in LOADERS:
        loader_cfg = _plain(cfg[loader])
        side = _expected_side(cfg[loader].dataset)
        loader_cfg.update(batch_size=2, num_workers=0, persistent_workers=False,
                          pin_memory=False,
                          dataset=_dataset(loader_cfg['dataset'], data_roots))
        with DefaultScope.overwrite_default_scope('kdbench'):
            dataloader = Runner.build_dataloader(loader_cfg, seed=0)
        batch = next(iter(dataloader))
        assert batch['inputs'].dtype == torch.uint8
        assert batch['inputs'].shape == (2, 3, side, side), loader
        assert batch['data_samples']['label'].shape == (2,)
        if loader == 'train_dataloader':
            model.train()
            data = model.data_preprocessor(batch, training=True)
            assert data['inputs'].dtype == torch.float32
            losses = model(**data, mode='loss')
            assert all(torch.isfinite(v) for v in losses.values())
        else:
            model.eval()
            preds = model.val_step(batch)
            assert len(preds) == 2 and preds[0]['pred_score'].shape == (_num_classes(cfg.model),)
            metric = METRICS.build(cfg[loader.replace('dataloader', 'evaluator')])
            metric.process(batch, preds)
            result = metric.evaluate(2)
            assert 0 <= result['accuracy/top1'] <= result['accuracy/top5'] <= 100


# -------------------------------------------------------------------------------- suites

@pytest.mark.parametrize('path', SUITES, ids=[os.path.relpath(p, CONFIG_DIR) for p in SUITES])
def test_suite_names_existing_configs(path, tmp_path):
    """Every shipped suite loads (its configs exist); each run is one task's config, the
    teacher's model matches the teacher inside every distiller, and the metric fits."""
    if 'suites' in _parsed(path):
        members = [os.path.join(os.path.dirname(path), m) for m in _parsed(path).suites]
        assert members and all(m in SUITES for m in members), members
        return
    suite = Suite(path, str(tmp_path))
    assert len({run.name for run in suite.runs}) == len(suite.runs)
    for run in suite.runs:
        assert run.config in ALL and run.config not in SUITES, run
        assert _task(run.config) == _task(suite.runs[0].config), run.config
    metric = {'ImageClassifier': 'accuracy/top1', 'DeepLabV3PlusSegmentor': 'mIoU'}
    for run in suite.runs:
        model = _config(run.config).model
        if run.role == 'teacher':
            assert suite.metric == metric[model.type]
        elif run.role != 'baseline' and run.depends is None:     # a released teacher file
            assert model.type == 'Distiller' and run.teacher_ckpt, run
        elif run.role != 'baseline':
            teacher = _config(run.depends.config).model
            assert model.type == 'Distiller' and model.teacher.type == teacher.type
            # The teacher net, less what only training it needs (its ImageNet init).
            init = ('data_preprocessor', 'encoder_ckpt')
            assert {k: v for k, v in model.teacher.items() if k not in init} == \
                {k: v for k, v in teacher.items() if k not in init}, run.config


# ------------------------------------------------------------------------ recipe values

def _configs_using(dataset_type: str):
    return [p for p in CONFIGS
            if _parsed(p).train_dataloader.dataset.type == dataset_type]


def test_cifar_kd_recipe():
    model = _config(KD_CIFAR).model
    assert model.type == 'Distiller'
    assert model.student_loss_weight == 0.1
    assert set(model.methods) == {'kd'}
    assert model.methods.kd.type == 'KD'
    assert model.methods.kd.temperature == 4
    assert model.methods.kd.loss_weight == 0.9
    assert model.student.net == dict(type='resnet8x4', num_classes=100)
    assert model.teacher.net == dict(type='resnet32x4', num_classes=100)


def test_cifar_at_recipe():
    model = _config(AT_CIFAR).model
    assert set(model.methods) == {'at'}
    assert model.methods.at.type == 'AT'
    assert model.methods.at.loss_weight == 1000
    assert model.methods.at.p == 2
    assert model.get('student_loss_weight', 1.0) == 1.0


@pytest.mark.parametrize('path', _configs_using('CIFAR100'),
                         ids=lambda p: os.path.relpath(p, CONFIG_DIR))
def test_cifar_schedule(path):
    cfg = _config(path)
    student = cfg.model.get('student', cfg.model).net.type
    # lr 0.01 for ShuffleNet/MobileNet students (docs/reference.md §3), else 0.05.
    lr = 0.01 if student.startswith(('shufflenet', 'mobilenet')) else 0.05
    assert cfg.param_scheduler == [dict(type='MultiStepLR', by_epoch=True,
                                        milestones=[150, 180, 210], gamma=0.1)]
    assert cfg.train_cfg.max_epochs == 240
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'SGD' and optimizer.lr == lr
    assert optimizer.weight_decay == 5e-4 and optimizer.momentum == 0.9
    assert cfg.train_dataloader.batch_size == 64
    train_set = cfg.train_dataloader.dataset
    train_set = train_set.get('dataset', train_set)      # unwrap ClassSubsetDataset
    assert [t['type'] for t in train_set.pipeline] == ['RandomCrop', 'RandomHorizontalFlip']
    assert train_set.pipeline[0]['padding'] == 4
    assert not cfg.val_dataloader.dataset.get('pipeline')


@pytest.mark.parametrize('path', _configs_using('ImageFolderDataset'),
                         ids=lambda p: os.path.relpath(p, CONFIG_DIR))
def test_imagenet_schedule(path):
    cfg = _config(path)
    assert cfg.param_scheduler[0]['milestones'] == [30, 60, 90]
    assert cfg.train_cfg.max_epochs == 100
    optimizer = cfg.optim_wrapper.optimizer
    methods = (cfg.model.get('methods') or {}) if cfg.model.type == 'Distiller' else {}
    if any(m and m.type == 'TaT' for m in methods.values()):
        # TaT's official ImageNet recipe (docs/reference.md §4): AdamW lr 1.6e-3, wd 5e-4.
        assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('AdamW', 1.6e-3, 5e-4)
    else:
        assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ('SGD', 0.2, 1e-4)
    assert _num_classes(cfg.model) == 1000


@pytest.mark.parametrize('options', [None, 'load_config'])
def test_swap_kd_for_at_with_one_merge(tmp_path, options):
    swap = {'model.methods.kd': None, 'model.methods.at.type': 'AT',
            'model.student_loss_weight': 1.0}
    if options is None:
        cfg = _config(KD_CIFAR)
        cfg.merge_from_dict(swap)
    else:       # the tools' path: --cfg-options
        cfg = load_config(KD_CIFAR, swap, work_dir=str(tmp_path))
    assert cfg.model.methods.kd is None
    assert cfg.model.methods.at == dict(type='AT')
    model = MODELS.build(_stand_in_model(cfg.model, tmp_path))
    assert list(model.methods) == ['at']
    assert model.student_loss_weight == 1.0
    assert model.methods['at'].loss_weight == 1000       # AT's default beta
    losses = model(torch.randn(2, 3, 16, 16), dict(label=torch.tensor([1, 2])), mode='loss')
    assert set(losses) == {'loss_cls', 'loss_at'}


# docs/reference.md §3 per-pair table: (teacher, student) -> (beta, resolution, normalize, lr).
CAT_KD_PAIRS = {
    ('resnet56', 'resnet20'): (0.7, 2, False, 0.05),
    ('resnet110', 'resnet32'): (1.8, 2, False, 0.05),
    ('resnet32x4', 'resnet8x4'): (15, 2, False, 0.05),
    ('wrn_40_2', 'wrn_16_2'): (12, 2, False, 0.05),
    ('wrn_40_2', 'wrn_40_1'): (1.5, 2, False, 0.05),
    ('vgg13', 'vgg8'): (4.5, 2, False, 0.05),
    ('resnet32x4', 'shufflenetv1'): (600, 4, True, 0.01),
    ('resnet32x4', 'shufflenetv2'): (600, 4, True, 0.01),
    ('wrn_40_2', 'shufflenetv1'): (80, 4, True, 0.01),
    ('vgg13', 'mobilenetv2_cifar'): (15, 2, True, 0.01),
    ('resnet50_cifar', 'mobilenetv2_cifar'): (40, 2, True, 0.01),
    ('tv_resnet34', 'tv_resnet18'): (0.5, 2, False, 0.2),
    ('tv_resnet50', 'mobilenetv1'): (10, 2, True, 0.2),
    # timm teachers (not CAT-KD pairs): the same student's ImageNet row, ResNet-34's.
    ('convnext_tiny.fb_in1k', 'tv_resnet18'): (0.5, 2, False, 0.2),
    ('deit_small_patch16_224.fb_in1k', 'tv_resnet18'): (0.5, 2, False, 0.2),
    # No published setting (not a CAT-KD pair): kdbench takes the same-teacher resnet110 ->
    # resnet32 row (see the config's comment).
    ('resnet110', 'resnet20'): (1.8, 2, False, 0.05),
}


def test_cat_kd_configs_follow_the_per_pair_table():
    found = {}
    for path in glob.glob(os.path.join(CONFIG_DIR, 'cls', 'cat_kd_*.py')):
        model = _config(path).model
        pair = (_net_name(model.teacher), _net_name(model.student))
        method = model.methods.cat_kd
        found[pair] = (method.beta, method.resolution, method.normalize,
                       _config(path).optim_wrapper.optimizer.lr)
        assert method.type == 'CATKD' and not method.get('binarize', False)
        assert model.student.classifier_bias is False
        assert model.get('student_loss_weight', 1.0) == 1.0
    assert found == CAT_KD_PAIRS


# timm teachers on ImageNet (docs/models.md): config token -> timm model name.
TIMM_PAIRS = {('convnext_tiny', 'convnext_tiny.fb_in1k'),
              ('deit_small', 'deit_small_patch16_224.fb_in1k')}
TIMM_METHODS = ('kd', 'dkd', 'dist', 'at', 'cat_kd')


@pytest.mark.parametrize('token, model_name', sorted(TIMM_PAIRS))
def test_timm_teacher_configs_normalise_as_timm_pretrained_them(token, model_name):
    """KD/DKD/DIST/AT/CAT-KD configs exist for each timm teacher -> ResNet-18; the
    teacher's mean/std are its ``pretrained_cfg``'s (x255), here equal to the student's,
    so the Distiller feeds it the student's batch (no conversion)."""
    import timm
    pretrained = timm.create_model(model_name, pretrained=False).pretrained_cfg
    for method in TIMM_METHODS:
        path = os.path.join(CONFIG_DIR, 'cls', f'{method}_{token}_resnet18_imagenet.py')
        assert path in CONFIGS, f'missing {path}'
        model = _config(path).model
        assert (model.teacher.type, model.teacher.model_name) == ('TimmClassifier', model_name)
        assert model.student.net.type == 'tv_resnet18'
        assert model.teacher_ckpt == f'checkpoints/{model_name}.pth'
        preprocessor = model.teacher.data_preprocessor
        assert preprocessor.mean == pytest.approx([255 * m for m in pretrained['mean']])
        assert preprocessor.std == pytest.approx([255 * s for s in pretrained['std']])
        assert (preprocessor.mean, preprocessor.std) == \
            (model.student.data_preprocessor.mean, model.student.data_preprocessor.std)


# ------------------------------------------------------------------ the benchmark matrix

# docs/reference.md §6 pairs (11 CIFAR-100 pairs of RepDistiller/CAT-KD, the TaT-paper resnet110 ->
# resnet20, the two ImageNet pairs) as config-name tokens (teacher, student, dataset).
BENCHMARK_PAIRS = [
    ('wrn_40_2', 'wrn_16_2', 'cifar100'), ('wrn_40_2', 'wrn_40_1', 'cifar100'),
    ('resnet56', 'resnet20', 'cifar100'), ('resnet110', 'resnet32', 'cifar100'),
    ('resnet32x4', 'resnet8x4', 'cifar100'), ('vgg13', 'vgg8', 'cifar100'),
    ('vgg13', 'mobilenetv2', 'cifar100'), ('resnet50', 'mobilenetv2', 'cifar100'),
    ('resnet32x4', 'shufflenetv1', 'cifar100'), ('resnet32x4', 'shufflenetv2', 'cifar100'),
    ('wrn_40_2', 'shufflenetv1', 'cifar100'), ('resnet110', 'resnet20', 'cifar100'),
    ('resnet34', 'resnet18', 'imagenet'), ('resnet50', 'mobilenetv1', 'imagenet'),
]
# Config prefixes every pair has (besides the baseline); other registered methods are
# checked where they have a config for the pair.
MATRIX_METHODS = ('kd', 'at', 'cat_kd', 'tat')


def _arch_token(net_type: str) -> str:
    """A network's name in config file names: tv_resnet34 -> resnet34, resnet50_cifar ->
    resnet50, mobilenetv2_cifar -> mobilenetv2."""
    return net_type.removeprefix('tv_').removesuffix('_cifar')


def _matrix_config(method: str, teacher: str, student: str, dataset: str) -> str:
    name = (f'{student}_{dataset}' if method == 'baseline'
            else f'{method}_{teacher}_{student}_{dataset}')
    return os.path.join(CONFIG_DIR, 'cls', name + '.py')


@pytest.mark.parametrize('pair', BENCHMARK_PAIRS, ids='-'.join)
def test_benchmark_matrix_is_complete(pair):
    """Every pair has a teacher config, the student baseline, KD, AT, CAT-KD and TaT, and
    each file (of every registered method that has one) holds the networks and the method
    its name says."""
    teacher, student, dataset = pair
    path = os.path.join(CONFIG_DIR, 'cls', f'{teacher}_{dataset}.py')
    assert path in CONFIGS, f'missing teacher config {path}'
    assert _arch_token(_parsed(path).model.net.type) == teacher
    path = _matrix_config('baseline', teacher, student, dataset)
    assert path in CONFIGS, f'missing baseline config {path}'
    assert _parsed(path).model.type == 'ImageClassifier'
    assert _arch_token(_parsed(path).model.net.type) == student
    for entry in registered_methods():
        method, method_type = entry.config_prefix, entry.name
        path = _matrix_config(method, teacher, student, dataset)
        if method not in MATRIX_METHODS and path not in CONFIGS:
            continue
        assert path in CONFIGS, f'missing {method} config {path}'
        model = _parsed(path).model
        assert model.type == 'Distiller'
        assert _arch_token(model.student.net.type) == student
        assert _arch_token(model.teacher.net.type) == teacher
        assert [m.type for m in model.methods.values() if m is not None] == [method_type]


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(CONFIG_DIR, 'cls', 'kd_*.py'))),
                         ids=os.path.basename)
def test_every_kd_config_has_the_recipe(path):
    """docs/reference.md §1: CIFAR T=4, CE 0.1, KD 0.9; ImageNet T=1, CE 0.5, KD 0.5."""
    model = _config(path).model
    temperature, ce, kd = (4.0, 0.1, 0.9) if path.endswith('_cifar100.py') else (1.0, 0.5, 0.5)
    assert set(model.methods) == {'kd'} and model.methods.kd.type == 'KD'
    assert (model.methods.kd.temperature, model.student_loss_weight,
            model.methods.kd.loss_weight) == (temperature, ce, kd)


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(CONFIG_DIR, 'cls', 'at_*.py'))),
                         ids=os.path.basename)
def test_every_at_config_has_the_recipe(path):
    """docs/reference.md §2: p=2, beta=1000, CE 1, the last backbone stage (kdbench's default)."""
    model = _config(path).model
    assert set(model.methods) == {'at'} and model.methods.at.type == 'AT'
    assert (model.methods.at.p, model.methods.at.loss_weight) == (2, 1000)
    assert model.methods.at.get('taps', ('last_stage',)) in (('last_stage',), ['last_stage'])
    assert model.get('student_loss_weight', 1.0) == 1.0
