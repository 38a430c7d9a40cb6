"""CAM visualisation: model_cams, cam_grid, visualize_cams and tools/visualize_cams.py on the
demo digits data with random-init resnet20 (teacher) / resnet8 (student) checkpoints."""
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from shared_setup import ROOT

import tasks.classification  # noqa: F401  (registers the classifier, networks, datasets)
from kdbench.apis import load_config, task_model_cfg
from kdbench.explain import cam_grid, model_cams, visualize_cams
from kdbench.explain.cams import colour_map, grid_size, tile_size
from kdbench.registry import DATASETS, MODELS
from kdbench.utils.weights import load_task_weights

TEACHER_CFG = os.path.join(ROOT, 'configs/demo/resnet20_digits.py')
STUDENT_CFG = os.path.join(ROOT, 'configs/demo/resnet8_digits.py')


def _save(cfg_path: str, path, seed: int) -> str:
    torch.manual_seed(seed)
    model = MODELS.build(load_config(cfg_path).model)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    """Random-init teacher and student checkpoints."""
    folder = tmp_path_factory.mktemp('cams_ckpts')
    return (_save(TEACHER_CFG, folder / 'teacher.pth', 0),
            _save(STUDENT_CFG, folder / 'student.pth', 1))


def _loaded(cfg_path: str, ckpt: str) -> nn.Module:
    model = MODELS.build(task_model_cfg(load_config(cfg_path).model))
    load_task_weights(model, ckpt)
    return model


def _first_images(n: int):
    """The first ``n`` demo test images (uint8), their labels and the preprocessed batch."""
    cfg = load_config(STUDENT_CFG)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    samples = [dataset[i] for i in range(n)]
    images = torch.stack([s['inputs'] for s in samples])
    labels = [s['data_samples']['label'] for s in samples]
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    inputs = preprocessor(dict(inputs=images, data_samples=dict(label=torch.tensor(labels))),
                          False)['inputs']
    return images, labels, inputs


def test_model_cams_average_to_the_logits_without_bias():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='ImageClassifier', net=dict(type='resnet8', num_classes=7)))
    model.train()
    cams, logits = model_cams(model, torch.randn(3, 3, 16, 16))
    assert cams.shape == (3, 7, 4, 4) and logits.shape == (3, 7)
    assert not cams.requires_grad and model.training     # no_grad, mode restored
    torch.testing.assert_close(cams.mean(dim=(2, 3)) + model.net.fc.bias, logits,
                               atol=1e-5, rtol=1e-5)


def test_model_cams_needs_the_taps():
    with pytest.raises(TypeError, match='tap_points'):
        model_cams(nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8))


def test_colour_map_stops():
    rgb = colour_map([0.0, 0.5, 1.0, 2.0])
    assert rgb.dtype.name == 'uint8'
    assert rgb.tolist() == [[0, 0, 128], [0, 255, 255], [255, 0, 0], [255, 0, 0]]


def test_cam_grid_upscales_small_images():
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    cams = torch.randn(2, 5, 8, 8)
    grid = cam_grid(images, cams, cams, torch.tensor([[4], [0]]), list('abcde'),
                    resolution=4, labels=[1, 2])
    assert tile_size(32, 32) == (96, 96)
    assert grid.size == grid_size(2, 1, 32, 32)


def test_visualize_cams_writes_the_picture_and_the_values(ckpts, tmp_path):
    teacher_ckpt, student_ckpt = ckpts
    png = visualize_cams(TEACHER_CFG, teacher_ckpt, STUDENT_CFG, student_ckpt, str(tmp_path),
                         num_images=3, topk=2, resolution=2)
    assert png == str(tmp_path / 'cams.png')
    with Image.open(png) as picture:
        picture.load()
        size = picture.size
    # 16x16 digits in 96 px tiles; 3 rows under a header, 1 + 4 * topk columns.
    assert tile_size(16, 16) == (96, 96)
    assert size == grid_size(3, 2, 16, 16)
    assert size[0] > 9 * 96 and 3 * 96 < size[1] < 4 * 96 + 40
    entries = json.loads((tmp_path / 'cams.json').read_text())
    assert len(entries) == 3

    images, labels, inputs = _first_images(3)
    teacher_cams, _ = model_cams(_loaded(TEACHER_CFG, teacher_ckpt), inputs)
    student_cams, _ = model_cams(_loaded(STUDENT_CFG, student_ckpt), inputs)
    top2 = teacher_cams.mean(dim=(2, 3)).topk(2, dim=1).indices
    for n, entry in enumerate(entries):
        assert entry['label'] == labels[n] and entry['label_name'] == str(labels[n])
        assert entry['class_ids'] == top2[n].tolist()
        assert entry['class_names'] == [str(k) for k in top2[n].tolist()]
        for owner, cams in (('teacher', teacher_cams), ('student', student_cams)):
            chosen = cams[n, top2[n]]
            torch.testing.assert_close(torch.tensor(entry[f'{owner}_pooled']),
                                       F.adaptive_avg_pool2d(chosen, 2))
            torch.testing.assert_close(torch.tensor(entry[f'{owner}_scores']),
                                       chosen.mean(dim=(1, 2)))
    scores = torch.tensor([e['teacher_scores'] for e in entries])
    assert (scores[:, 0] >= scores[:, 1]).all()


def test_mismatched_class_counts_are_refused(ckpts, tmp_path):
    teacher_ckpt, _ = ckpts
    cfg = tmp_path / 'resnet8_digits_5.py'
    cfg.write_text(f'_base_ = [{STUDENT_CFG!r}]\nmodel = dict(net=dict(num_classes=5))\n')
    student_ckpt = _save(str(cfg), tmp_path / 'student5.pth', 2)
    with pytest.raises(ValueError, match='10 classes but the student has 5'):
        visualize_cams(TEACHER_CFG, teacher_ckpt, str(cfg), student_ckpt, str(tmp_path))


def test_missing_checkpoint_is_named(ckpts, tmp_path):
    teacher_ckpt, _ = ckpts
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        visualize_cams(TEACHER_CFG, teacher_ckpt, STUDENT_CFG, missing, str(tmp_path))


def test_tool_runs(ckpts, tmp_path):
    teacher_ckpt, student_ckpt = ckpts
    out = tmp_path / 'cli'
    env = dict(os.environ, PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, 'tools/visualize_cams.py', TEACHER_CFG, teacher_ckpt, STUDENT_CFG,
         student_ckpt, '--out', str(out), '--images', '2', '--topk', '1', '--resolution', '3'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(out / 'cams.png')
    with Image.open(out / 'cams.png') as picture:
        assert picture.size == grid_size(2, 1, 16, 16)
    entries = json.loads((out / 'cams.json').read_text())
    assert len(entries) == 2 and len(entries[0]['teacher_pooled'][0]) == 3


def test_topk_beyond_the_classes_is_refused(ckpts, tmp_path):
    teacher_ckpt, student_ckpt = ckpts
    with pytest.raises(ValueError, match=r'topk must be in \[1, 10\]'):
        visualize_cams(TEACHER_CFG, teacher_ckpt, STUDENT_CFG, student_ckpt, str(tmp_path),
                       topk=11)
