"""tools/test.py's segmentation outputs: --out (per-image IoU and pixel accuracy),
--show-dir (image | ground truth | prediction in the VOC palette) and --tta (flip +
multi-scale, averaged softmax), on a tiny VOC folder and a random R18 checkpoint."""
import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from PIL import Image
from seg_data import write_voc
from test_seg_tools import ROOT, _data_options, _run

import tasks.segmentation  # noqa: F401
from kdbench.registry import MODELS
from tasks.segmentation.outputs import colourise, label_palette
from tasks.segmentation.tta import tta_probabilities


def test_palette_is_the_voc_devkit_colour_map():
    palette = label_palette()
    assert palette[0].tolist() == [0, 0, 0] and palette[1].tolist() == [128, 0, 0]
    assert palette[2].tolist() == [0, 128, 0] and palette[15].tolist() == [192, 128, 128]
    assert palette[255].tolist() == [224, 224, 192]          # VOC's void border colour
    assert len({tuple(c) for c in palette}) == 256


def test_tta_averages_softmax_over_scales_and_flips():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 20, 28)
    with torch.no_grad():
        plain = tta_probabilities(conv, x, scales=(1.0,), flip=False)
        assert torch.allclose(plain, conv(x).softmax(1))
        both = tta_probabilities(conv, x, scales=(1.0, 0.5), flip=True)
        half = F.interpolate(x, size=(10, 14), mode='bilinear', align_corners=False)
        up = [F.interpolate(conv(half), size=(20, 28), mode='bilinear', align_corners=False),
              F.interpolate(conv(half.flip(-1)).flip(-1), size=(20, 28), mode='bilinear',
                            align_corners=False)]
        expected = (conv(x).softmax(1) + conv(x.flip(-1)).flip(-1).softmax(1)
                    + up[0].softmax(1) + up[1].softmax(1)) / 4
    assert torch.allclose(both, expected, atol=1e-6)
    with pytest.raises(ValueError, match='scales must be positive'):
        tta_probabilities(conv, x, scales=())


def test_segmentor_tta_pads_odd_sizes_and_matches_plain_at_one_scale():
    torch.manual_seed(0)
    model = MODELS.build(dict(type='DeepLabV3PlusSegmentor', encoder='resnet18',
                              num_classes=5)).eval()
    x, labels = torch.randn(1, 3, 37, 53), torch.zeros(1, 37, 53, dtype=torch.long)
    with torch.no_grad():
        plain = model(x, dict(label=labels), mode='predict')[0]['pred_sem_seg']
        model.tta = dict(scales=(1.0,), flip=False)
        assert torch.equal(model(x, dict(label=labels), mode='predict')[0]['pred_sem_seg'],
                           plain)
        model.tta = dict(scales=(0.5, 0.75, 1.25), flip=True)       # 19x27 .. 46x66: padded
        pred = model(x, dict(label=labels), mode='predict')[0]['pred_sem_seg']
    assert pred.shape == (37, 53)


def test_test_py_writes_records_and_pictures_with_tta(tmp_path):
    labels = write_voc(tmp_path / 'voc', n=3)
    torch.manual_seed(0)
    model = MODELS.build(dict(type='DeepLabV3PlusSegmentor', encoder='resnet18',
                              num_classes=21))
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'model.pth')
    out = _run('tools/test.py', 'configs/seg/deeplabv3p_r18_voc.py', str(tmp_path / 'model.pth'),
               '--work-dir', str(tmp_path / 'work'), '--out', str(tmp_path / 'res.json'),
               '--show-dir', str(tmp_path / 'show'), '--tta', '--tta-scales', '0.5', '1.0',
               '--cfg-options', 'model.encoder_ckpt=None',
               *_data_options(tmp_path / 'voc', 64), cwd=ROOT)
    metrics = json.loads(out[out.rindex('{'):out.rindex('}') + 1])
    used = Config.fromfile(tmp_path / 'work' / 'deeplabv3p_r18_voc.py')    # what the runner ran
    assert used.model.tta == dict(flip=True, scales=(0.5, 1.0))
    assert ('test-time augmentation: on: each image at scales 0.5, 1, each also mirrored '
            'left-right (4 forward passes per image); the class probabilities are averaged'
            ) in out
    records = json.load(open(tmp_path / 'res.json'))
    assert [r['name'] for r in records] == ['img_0', 'img_1', 'img_2']
    assert [r['index'] for r in records] == [0, 1, 2]
    lut = {tuple(c): i for i, c in enumerate(label_palette())}
    hits = total = 0
    for record in records:
        name = record['name']
        picture = np.asarray(Image.open(tmp_path / 'show' / f'{name}.png'))
        image = np.asarray(Image.open(tmp_path / 'voc' / 'JPEGImages' / f'{name}.jpg'))
        gt = labels[name]
        w = gt.shape[1]
        assert picture.shape == (gt.shape[0], 3 * w, 3)
        assert np.array_equal(picture[:, :w], image)
        assert np.array_equal(picture[:, w:2 * w], colourise(gt))
        pred = np.vectorize(lambda *c: lut[c])(*picture[:, 2 * w:].transpose(2, 0, 1))
        counted = gt != 255
        assert record['pixel_acc'] == pytest.approx(100 * (pred == gt)[counted].mean())
        hits, total = hits + (pred == gt)[counted].sum(), total + counted.sum()
        present = np.union1d(np.unique(pred[counted]), np.unique(gt[counted]))
        assert len(record['iou']) == len(present)
    assert metrics['aAcc'] == pytest.approx(100 * hits / total, abs=1e-4)
    assert os.path.isfile(tmp_path / 'res.json')


def test_the_segmentor_states_its_tta_defaults_and_the_log_line_reads_them():
    from kdbench.apis.outputs import tta_text
    from tasks.segmentation.tta import DEFAULT_SCALES
    model = MODELS.build(dict(type='DeepLabV3PlusSegmentor', encoder='resnet18',
                              num_classes=21, tta=dict(flip=True)))
    assert model.tta == dict(scales=DEFAULT_SCALES, flip=True)
    assert tta_text(model.tta) == (
        'on: each image at scales 0.5, 0.75, 1, 1.25, 1.5, 1.75, each also mirrored '
        'left-right (12 forward passes per image); the class probabilities are averaged')
    assert tta_text(dict(scales=(1.0,), flip=False)).startswith(
        'on: each image at scales 1 (1 forward pass per image)')
    assert tta_text(None) == 'off'
