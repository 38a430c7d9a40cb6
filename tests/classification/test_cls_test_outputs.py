"""tools/test.py's classification outputs (--out records with top-k classes, --show-dir
grids) and the refusals: unknown --out format, --tta on a classifier."""
import json
import os
import pickle

import pytest
from PIL import Image
from shared_setup import ROOT

from kdbench.apis import add_sample_outputs, enable_tta, evaluate, load_config

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py')


@pytest.fixture
def checkpoint(tmp_path, teacher_ckpt, tiny_classifier_cfg):
    return teacher_ckpt(tiny_classifier_cfg('resnet8', 10), name='resnet8.pth')


def test_out_records_every_sample_in_order_and_agree_with_the_metric(tmp_path, checkpoint):
    cfg = load_config(CONFIG, dict(log_level='WARNING'), str(tmp_path / 'work'))
    add_sample_outputs(cfg, str(tmp_path / 'res.pkl'), str(tmp_path / 'show'))
    metrics = evaluate(cfg, checkpoint)
    records = pickle.load(open(tmp_path / 'res.pkl', 'rb'))
    assert [r['index'] for r in records] == list(range(450))         # digits test split
    top1 = 100 * sum(r['topk'][0] == r['label'] for r in records) / len(records)
    top5 = 100 * sum(r['label'] in r['topk'] for r in records) / len(records)
    assert metrics['accuracy/top1'] == pytest.approx(top1)
    assert metrics['accuracy/top5'] == pytest.approx(top5)
    first = records[0]
    assert len(first['topk']) == 5 and first['topk_names'] == [str(c) for c in first['topk']]
    assert first['topk_probs'] == sorted(first['topk_probs'], reverse=True)
    pages = sorted(os.listdir(tmp_path / 'show'))
    assert pages == [f'page_0_{i:04d}.png' for i in range(8)]     # ceil(450 / 64)
    assert Image.open(tmp_path / 'show' / pages[0]).size == (8 * 132, 8 * (128 + 6 * 12 + 4))


def test_out_as_json(tmp_path, checkpoint):
    cfg = load_config(CONFIG, dict(log_level='WARNING'), str(tmp_path / 'work'))
    add_sample_outputs(cfg, str(tmp_path / 'res.json'))
    evaluate(cfg, checkpoint)
    assert len(json.load(open(tmp_path / 'res.json'))) == 450
    assert not os.path.exists(tmp_path / 'show')


def test_refusals_name_the_option(tmp_path):
    cfg = load_config(CONFIG, {}, str(tmp_path))
    with pytest.raises(ValueError, match=r"--out 'res.txt': use a .json or .pkl"):
        add_sample_outputs(cfg, 'res.txt')
    with pytest.raises(ValueError, match="--tta: model type 'ImageClassifier' has no"):
        enable_tta(cfg)
    cfg.test_evaluator = dict(type='DumpResults', out_file_path='x.pkl')
    with pytest.raises(ValueError, match='names no sample_writer'):
        add_sample_outputs(cfg, show_dir=str(tmp_path))


def test_tta_goes_to_the_student_of_a_distillation_config(tmp_path):
    cfg = load_config(os.path.join(ROOT, 'configs', 'seg', 'kd_deeplabv3p_r101_r18_voc.py'),
                      {}, str(tmp_path))
    enable_tta(cfg, [0.75, 1.0])
    assert cfg.model.student.tta == dict(flip=True, scales=(0.75, 1.0))
    assert 'tta' not in cfg.model.teacher
