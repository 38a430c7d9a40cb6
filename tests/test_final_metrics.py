"""final_metrics.json of real (tiny) training runs on the embedded digits, under both
validation protocols, and the test split evaluated once with the chosen weights."""
import json
import os

import pytest
import torch
from shared_setup import ROOT, shrink_to_iterations

from kdbench.apis import evaluate, load_config, train
from kdbench.benchmark.results import read_scalars, scalar_log
from kdbench.utils.checkpoint import load_local_checkpoint

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py')


def _run(work_dir, **options):
    """Four iterations of resnet8 on digits, validated after every second one, keeping the
    best checkpoint as every kdbench config does; returns (final_metrics, val records)."""
    cfg = load_config(CONFIG, dict(log_level='WARNING', **options), str(work_dir))
    cfg.train_dataloader.batch_size = 16
    shrink_to_iterations(cfg, 4)
    cfg.train_cfg.val_interval = 2
    cfg.default_hooks.checkpoint.update(save_best='auto', rule='greater')
    runner = train(cfg)
    with open(os.path.join(work_dir, 'final_metrics.json')) as f:
        final = json.load(f)
    records = read_scalars(scalar_log(str(work_dir)))
    return cfg, runner, final, records


def test_test_protocol_reports_the_best_validation_on_the_test_split(tmp_path):
    _, runner, final, records = _run(tmp_path)
    vals = [r for r in records if 'accuracy/top1' in r]
    assert len(vals) == 2 and not any(k.startswith('test/') for r in records for k in r)
    best = max(vals, key=lambda r: r['accuracy/top1'])        # first of equal ones
    assert final['protocol'] == 'test' and final['val_metric'] == 'accuracy/top1'
    assert final['val'] == final['test']
    assert final['val'] == {k: best[k] for k in ('accuracy/top1', 'accuracy/top5')}
    assert final['iter'] == 2 * (vals.index(best) + 1) and final['epoch'] == 0
    assert len(runner.val_dataloader.dataset) == 450                  # the test split


def test_holdout_validates_on_the_held_out_part_and_tests_once(tmp_path):
    cfg, runner, final, records = _run(tmp_path, **{'validation.split': 'holdout',
                                                    'validation.size': 100})
    assert len(runner.val_dataloader.dataset) == 100
    assert len(runner.train_dataloader.dataset) == 1347 - 100
    vals = [r for r in records if 'accuracy/top1' in r]
    tests = [r for r in records if 'test/accuracy/top1' in r]
    assert len(vals) == 2 and len(tests) == 1
    best = max(vals, key=lambda r: r['accuracy/top1'])
    assert final['protocol'] == 'holdout' and final['iter'] == 2 * (vals.index(best) + 1)
    assert final['val'] == {k: best[k] for k in ('accuracy/top1', 'accuracy/top5')}
    assert final['test'] == {k: tests[0][f'test/{k}'] for k in ('accuracy/top1',
                                                               'accuracy/top5')}
    # the test metrics are the best checkpoint's on the test split
    best_file = [f for f in os.listdir(tmp_path) if f.startswith('best_')]
    assert best_file == [f"best_accuracy_top1_iter_{final['iter']}.pth"]
    again = evaluate(cfg, str(tmp_path / best_file[0]))
    assert again['accuracy/top1'] == pytest.approx(final['test']['accuracy/top1'])
    assert again['accuracy/top5'] == pytest.approx(final['test']['accuracy/top5'])
    # and the runner's model keeps the last weights
    last = load_local_checkpoint(str(tmp_path / 'iter_4.pth'))['state_dict']
    current = runner.model.state_dict()
    assert last.keys() == current.keys()
    assert all(torch.equal(last[k], current[k]) for k in last)


def test_a_split_larger_than_the_training_set_stops_before_training(tmp_path):
    with pytest.raises(ValueError, match='validation.size=1347 holds out the whole training'):
        _run(tmp_path, **{'validation.split': 'holdout', 'validation.size': 1347})
    assert not [f for f in os.listdir(tmp_path) if f.endswith('.pth')]
