"""The embedded segmentation demo: DigitsSegmentationDataset (determinism, labels checked
against an independent re-rendering and against the image colours, disjoint train/test
digit sources) and the configs under configs/demo/seg (parse, build, feed their data
through the model; a 2-iteration Runner run of a distillation config, then teacher-free
evaluation)."""
import glob
import os

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from sklearn.datasets import load_digits
from shared_setup import ROOT, shrink_to_iterations

import kdbench.distill  # noqa: F401  (registers the Distiller and methods)
import tasks.classification  # noqa: F401  (DigitsDataset, for the shared split)
import tasks.segmentation  # noqa: F401
from kdbench.apis import evaluate, load_config, train
from kdbench.benchmark import Suite
from kdbench.registry import DATASETS, FUNCTIONS, METRICS, MODELS
from kdbench.utils.checkpoint import load_local_checkpoint
from tasks.segmentation.datasets import DIGIT_SEG_CLASSES, digit_sources

DEMO_SEG = os.path.join(ROOT, 'configs', 'demo', 'seg')
SUITE = os.path.join(ROOT, 'configs', 'suites', 'demo_seg.py')
CONFIGS = sorted(glob.glob(os.path.join(DEMO_SEG, '*.py')))
IDS = [os.path.basename(p) for p in CONFIGS]
SMALL = dict(digits_per_image=(3, 5), digit_sides=(16, 28))


def _scenes(split='train', **kwargs):
    return DATASETS.build(dict(type='DigitsSegmentationDataset', split=split,
                               **dict(dict(num_images=24), **kwargs)))


@pytest.fixture(scope='module')
def train_set():
    return _scenes('train', num_images=40, **SMALL)


# ----------------------------------------------------------------------------- dataset

def test_sample_format_and_label_values(train_set):
    assert len(train_set) == 40
    assert train_set.metainfo['classes'] == DIGIT_SEG_CLASSES
    assert DIGIT_SEG_CLASSES == ('background',) + tuple('0123456789')
    for i in (0, 17, 39):
        sample = train_set[i]
        image, label = sample['inputs'], sample['data_samples']['label']
        assert image.dtype == torch.uint8 and image.shape == (3, 64, 64)
        assert label.dtype == torch.int64 and label.shape == (64, 64)
        assert 0 <= label.min() and label.max() <= 10
    labels = train_set.labels
    assert labels.max() <= 10 and (labels > 0).any()
    assert all(1 <= len(s['digits']) <= 5 for s in train_set.scenes)


def test_deterministic_given_split_and_seed(train_set):
    again = _scenes('train', num_images=40, **SMALL)
    assert np.array_equal(again.images, train_set.images)
    assert np.array_equal(again.labels, train_set.labels)
    other_seed = _scenes('train', num_images=40, seed=1, **SMALL)
    assert not np.array_equal(other_seed.images, train_set.images)
    test_set = _scenes('test', num_images=40, **SMALL)
    assert not np.array_equal(test_set.images, train_set.images)
    # Default sizes and the first scenes do not depend on the number of scenes.
    assert len(_scenes('test', num_images=None)) == 200
    assert np.array_equal(_scenes('train', num_images=5, **SMALL).images, train_set.images[:5])


def _rerender(scene, digits, threshold, size):
    """Expected label map and the intensity map, made with OpenCV from the recorded
    layout (the dataset uses torch's interpolate)."""
    label = np.zeros((size, size), np.int64)
    alpha_map = np.zeros((size, size), np.float32)
    for d in scene['digits']:
        side = d['side']
        alpha = cv2.resize((digits[d['source']] / 16.0).astype(np.float32), (side, side),
                           interpolation=cv2.INTER_LINEAR).clip(0, 1)
        box = (slice(d['top'], d['top'] + side), slice(d['left'], d['left'] + side))
        assert not alpha_map[box].any(), 'digits overlap'
        label[box][alpha > threshold] = d['digit'] + 1
        alpha_map[box] = alpha
    return label, alpha_map


def test_labels_are_exactly_the_pasted_digits(train_set):
    sklearn_digits = load_digits()
    for i, scene in enumerate(train_set.scenes):
        for d in scene['digits']:
            assert d['digit'] == sklearn_digits.target[d['source']]
        expected, alpha = _rerender(scene, sklearn_digits.images, train_set.threshold, 64)
        label = train_set.labels[i].astype(np.int64)
        decided = np.abs(alpha - train_set.threshold) > 1e-4       # float ties aside
        assert np.array_equal(label[decided], expected[decided]), i
        assert (label > 0).sum() > 0
        # Independently of the layout: labelled pixels are far from the background colour
        # (at least half-way to a digit colour >= 120 away, minus half the noise), and the
        # pixels where no digit was pasted are background colour plus clipped noise.
        distance = np.linalg.norm(train_set.images[i].astype(float) - scene['background'],
                                  axis=-1)
        assert distance[label > 0].min() > 60 - 2.5 * 10 * np.sqrt(3) / 2 - 1   # rounding
        assert distance[alpha == 0].max() <= 2.5 * 10 * np.sqrt(3) + 1
        assert not label[alpha == 0].any()


def test_train_and_test_draw_from_disjoint_digits(train_set):
    targets = load_digits().target
    train_src, test_src = digit_sources(targets, 'train'), digit_sources(targets, 'test')
    assert not set(train_src) & set(test_src)
    assert len(train_src) + len(test_src) == len(targets) == 1797
    assert np.array_equal(np.bincount(targets[test_src]),
                          np.round(np.bincount(targets) * 0.25).astype(int))   # stratified
    test_set = _scenes('test', num_images=40, **SMALL)
    used_train = {d['source'] for s in train_set.scenes for d in s['digits']}
    used_test = {d['source'] for s in test_set.scenes for d in s['digits']}
    assert used_train <= set(train_src) and used_test <= set(test_src)
    # The classification demo's DigitsDataset holds out the same images.
    cls_test = DATASETS.build(dict(type='DigitsDataset', split='test', size=8))
    assert np.array_equal(cls_test.labels, targets[test_src])
    expected = np.round(load_digits().images[test_src] / 16.0 * 255)
    assert np.array_equal(cls_test.images[:, 0].numpy(), expected)


def test_pipeline_transforms_image_and_label_alike(train_set):
    flipped = _scenes('train', num_images=40, pipeline=[dict(type='HorizontalFlip', p=1.0)],
                      **SMALL)
    sample = flipped[3]
    assert torch.equal(sample['inputs'], torch.from_numpy(
        np.ascontiguousarray(train_set.images[3][:, ::-1].transpose(2, 0, 1))))
    assert torch.equal(sample['data_samples']['label'],
                       torch.from_numpy(train_set.labels[3][:, ::-1].astype(np.int64)))


@pytest.mark.parametrize('kwargs, match', [
    (dict(split='val'), 'split'),
    (dict(digit_sides=(40, 80)), 'digit_sides'),
    (dict(digits_per_image=(0, 2)), 'digits_per_image'),
    (dict(colour_range=(0, 10), background_range=(0, 10)), 'min_contrast'),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _scenes(**kwargs)


# ----------------------------------------------------------------------------- configs

def _model_cfg(cfg, teacher_ckpt) -> dict:
    """The config's model; a Distiller gets a random teacher (the ``teacher_ckpt`` fixture)."""
    model = cfg.model.to_dict()
    if model['type'] == 'Distiller':
        model['teacher_ckpt'] = teacher_ckpt(model['teacher'], seed=1)
    return model


def test_every_demo_config_is_found():
    assert {'deeplabv3p_r34_digitseg.py', 'deeplabv3p_r18_digitseg.py'} <= set(IDS)
    for method in ('kd', 'at', 'cat_kd', 'tat'):
        assert f'{method}_deeplabv3p_r34_r18_digitseg.py' in IDS
    suite = Suite(SUITE, 'unused')
    assert suite.metric == 'mIoU'
    assert {run.config for run in suite.runs} == set(CONFIGS)


@pytest.mark.parametrize('path', CONFIGS, ids=IDS)
def test_demo_config_builds_and_runs_its_data(path, teacher_ckpt):
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'kdbench'
    assert cfg.custom_imports['imports'] == ['tasks.segmentation']
    models = [cfg.model] if cfg.model.type != 'Distiller' else \
        [cfg.model.student, cfg.model.teacher]
    for model in models:
        assert model.type == 'DeepLabV3PlusSegmentor' and model.encoder_ckpt is None
        assert model.num_classes == len(DIGIT_SEG_CLASSES)
    assert cfg.train_dataloader.drop_last and cfg.train_dataloader.num_workers == 0
    assert cfg.val_evaluator.type == 'IoUMetric'
    for name in ('train_dataloader', 'val_dataloader'):
        assert FUNCTIONS.get(cfg[name].collate_fn.type) is not None

    torch.manual_seed(0)
    model = MODELS.build(_model_cfg(cfg, teacher_ckpt))
    loaders = {}
    for name in ('train_dataloader', 'val_dataloader'):
        loader = cfg[name].to_dict()
        loader['dataset']['num_images'] = 4
        loader['batch_size'] = 2
        with DefaultScope.overwrite_default_scope('kdbench'):
            loaders[name] = Runner.build_dataloader(loader)
    batch = next(iter(loaders['train_dataloader']))
    assert batch['inputs'].shape == (2, 3, 64, 64)
    model.train()
    losses = model(**model.data_preprocessor(batch, training=True), mode='loss')
    methods = {f'loss_{n}' for n in cfg.model.get('methods', {})}
    assert set(losses) == {'loss_seg'} | methods
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    metric = METRICS.build(cfg.val_evaluator)
    metric.dataset_meta = loaders['val_dataloader'].dataset.metainfo
    for batch in loaders['val_dataloader']:
        metric.process(batch, model.val_step(batch))
    assert 0 <= metric.evaluate(4)['mIoU'] <= 100


def _iter_cfg(config: str, work_dir, teacher: str):
    cfg = load_config(os.path.join(DEMO_SEG, config), dict(log_level='WARNING'), str(work_dir))
    cfg.model.teacher_ckpt = teacher
    for name, n in (('train_dataloader', 8), ('val_dataloader', 4), ('test_dataloader', 4)):
        cfg[name].dataset.num_images = n
        cfg[name].batch_size = 4
    return shrink_to_iterations(cfg)


def test_tat_demo_two_iterations_then_teacher_free_evaluation(tmp_path, teacher_ckpt):
    config = 'tat_deeplabv3p_r34_r18_digitseg.py'
    os.makedirs(tmp_path / 'run')
    teacher = _model_cfg(Config.fromfile(os.path.join(DEMO_SEG, config)), teacher_ckpt)
    runner = train(_iter_cfg(config, tmp_path / 'run', teacher['teacher_ckpt']))
    logged = {k[len('train/'):] for k in runner.message_hub.log_scalars if k.startswith('train/')}
    assert {'loss_seg', 'loss_tat'} <= logged
    assert np.isfinite(runner.message_hub.get_scalar('train/loss_tat').current())
    checkpoint = str(tmp_path / 'run' / 'iter_2.pth')
    saved = load_local_checkpoint(checkpoint)['state_dict']
    assert not any(k.startswith('teacher.') for k in saved)
    assert any(k.startswith('methods.tat.theta.') for k in saved)
    metrics = evaluate(_iter_cfg(config, tmp_path / 'eval', str(tmp_path / 'absent.pth')),
                       checkpoint)
    assert set(metrics) == {'mIoU', 'mAcc', 'aAcc'}


def test_demo_feature_weights_keep_the_voc_weight_per_position():
    """AT's loss grows as 1/(H*W) of its map and CAT-KD's as 1/r^2 of its pooled maps: the
    demo scales the VOC weights by the ratio of positions (4x4 AT map on a 64x64 scene at
    stride 16 vs 32x32 on VOC's 512 crops; CAT-KD pooled to 4x4 vs 8x8)."""
    voc = os.path.join(ROOT, 'configs', 'seg')
    at_voc = Config.fromfile(os.path.join(voc, 'at_deeplabv3p_r101_r18_voc.py')).model
    cat_voc = Config.fromfile(os.path.join(voc, 'cat_kd_deeplabv3p_r101_r18_voc.py')).model
    at = Config.fromfile(os.path.join(DEMO_SEG, 'at_deeplabv3p_r34_r18_digitseg.py')).model
    cat = Config.fromfile(os.path.join(DEMO_SEG, 'cat_kd_deeplabv3p_r34_r18_digitseg.py')).model
    positions = lambda side: (side // 16) ** 2  # noqa: E731  (stride-16 map of a side)
    assert at.methods.at.loss_weight == \
        at_voc.methods.at.loss_weight * positions(64) / positions(512)
    ratio = cat.methods.cat_kd.resolution ** 2 / cat_voc.methods.cat_kd.resolution ** 2
    assert cat.methods.cat_kd.beta == cat_voc.methods.cat_kd.beta * ratio
    grids = Config.fromfile(SUITE).grids          # a quarter, one and four times the recipe
    weight, beta = at.methods.at.loss_weight, cat.methods.cat_kd.beta
    assert grids['AT']['model.methods.at.loss_weight'] == [weight / 4, weight, weight * 4]
    assert grids['CAT-KD']['model.methods.cat_kd.beta'] == [beta / 4, beta, beta * 4]
