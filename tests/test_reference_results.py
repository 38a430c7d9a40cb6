"""configs/suites/reference_results.csv: the papers' published numbers (docs/reference.md §6).

Columns: ``dataset`` (cifar100, imagenet, voc, cocostuff10k), ``teacher`` and ``student`` (the
network names of the config file names: resnet32x4, wrn_40_2, mobilenetv2, resnet34,
deeplabv3p_r101, ...; a teacher or baseline row names its pair), ``method`` (teacher,
baseline, KD, AT, CAT-KD, TaT, TaT+KD), ``metric`` (top1, top5, mIoU), ``value`` (percent),
``source`` (the paper), ``table`` (the paper's table, empty where not checked),
``protocol`` (best/last epoch, runs averaged, as docs/reference.md §6 states; empty where it
states nothing). Every row names the config that reproduces it (:func:`config_path`).
"""
import csv
import os

import pytest
from mmengine.config import Config
from shared_setup import ROOT

from kdbench.distill import registered_methods

CSV = os.path.join(ROOT, 'configs', 'suites', 'reference_results.csv')
COLUMNS = ['dataset', 'teacher', 'student', 'method', 'metric', 'value', 'source', 'table',
           'protocol']
DATASETS = {'cifar100': 'cls', 'imagenet': 'cls', 'voc': 'seg', 'cocostuff10k': 'seg'}
METRICS = {'cls': {'top1', 'top5'}, 'seg': {'mIoU'}}
# Distillation methods (the method table's display names, and combinations) -> the prefix
# of their config names and the registered types of their method entries.
METHOD_PREFIX = {e.display_name: e.config_prefix for e in registered_methods()}
METHOD_PREFIX['TaT+KD'] = 'tat_kd'
METHOD_TYPES = {e.display_name: [e.name] for e in registered_methods()}
METHOD_TYPES['TaT+KD'] = ['KD', 'TaT']
METHODS = {'teacher', 'baseline', *METHOD_PREFIX}
# Config-name network -> the network the config builds (classification `net.type`,
# segmentation `encoder`); names not listed build themselves.
NETWORKS = {'resnet50': ('resnet50_cifar', 'tv_resnet50'), 'mobilenetv2': ('mobilenetv2_cifar',),
            'resnet34': ('tv_resnet34',), 'resnet18': ('tv_resnet18',),
            'deeplabv3p_r101': ('resnet101',), 'deeplabv3p_r18': ('resnet18',),
            'deeplabv3p_mbv2': ('mobilenet_v2',)}
TRAIN_SETS = {'cifar100': 'CIFAR100', 'imagenet': 'ImageFolderDataset', 'voc': 'VOCAugDataset',
              'cocostuff10k': 'COCOStuff10kDataset'}


def config_path(dataset: str, teacher: str, student: str, method: str) -> str:
    """The config (relative to the repository root) that reproduces a row.

    ``configs/{cls,seg}/``: teacher ``{teacher}_{dataset}.py``, baseline
    ``{student}_{dataset}.py``, a method ``{prefix}_{teacher}_{student}_{dataset}.py``
    where segmentation students drop their ``deeplabv3p_`` (``kd_deeplabv3p_r101_r18_voc``).
    TaT segmentation rows map to the kdbench-protocol ``tat_*`` configs; the official
    protocol (decoder tap, 513 resize) is the ``tat_official_*`` variant of the same name.
    """
    task = DATASETS[dataset]
    if method == 'teacher':
        name = f'{teacher}_{dataset}'
    elif method == 'baseline':
        name = f'{student}_{dataset}'
    else:
        name = f"{METHOD_PREFIX[method]}_{teacher}_{student.removeprefix('deeplabv3p_')}_{dataset}"
    return os.path.join('configs', task, name + '.py')


def _rows():
    with open(CSV, newline='') as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        return list(reader)


ROWS = _rows()


def test_schema():
    assert len(ROWS) >= 80
    for i, row in enumerate(ROWS, 2):            # line numbers of the file
        assert None not in row and all(row[c] is not None for c in COLUMNS), (i, row)
        assert row == {c: v.strip() for c, v in row.items()}, (i, 'stray spaces')
        assert row['dataset'] in DATASETS, (i, row)
        assert row['metric'] in METRICS[DATASETS[row['dataset']]], (i, row)
        assert row['method'] in METHODS, (i, row)
        assert row['teacher'] and row['student'] and row['source'], (i, row)
        value = float(row['value'])
        assert 0 <= value <= 100, (i, row)


def test_no_duplicate_rows():
    keys = [tuple(r[c] for c in ('dataset', 'teacher', 'student', 'method', 'metric', 'source'))
            for r in ROWS]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert not duplicates


def test_one_teacher_and_baseline_value_per_network():
    """A teacher (baseline) row repeats per pair: the same network has one number per source."""
    for method, column in (('teacher', 'teacher'), ('baseline', 'student')):
        seen = {}
        for r in ROWS:
            if r['method'] == method:
                key = (r['dataset'], r[column], r['metric'], r['source'])
                assert seen.setdefault(key, r['value']) == r['value'], (key, r['value'])


def test_reference_section_6_is_covered():
    pairs = {(r['dataset'], r['teacher'], r['student']): set() for r in ROWS}
    for r in ROWS:
        pairs[r['dataset'], r['teacher'], r['student']].add(r['method'])
    cifar = [p for p in pairs if p[0] == 'cifar100']
    # 11 RepDistiller / CAT-KD pairs, plus the TaT paper's resnet110 -> resnet20.
    assert len(cifar) == 12
    assert sum({'teacher', 'baseline', 'KD', 'AT', 'CAT-KD'} <= pairs[p] for p in cifar) == 11
    assert sum('TaT' in pairs[p] for p in cifar) == 7
    assert pairs['imagenet', 'resnet34', 'resnet18'] == {'CAT-KD', 'TaT', 'TaT+KD', 'DKD', 'DIST'}
    assert pairs['imagenet', 'resnet50', 'mobilenetv1'] == {'CAT-KD', 'DKD'}
    # DKD on the 11 CAT-KD pairs (its Tables 5/6); FitNet there and in TaT's Table 1.
    assert sum('DKD' in pairs[p] for p in cifar) == 11
    assert all('FitNet' in pairs[p] for p in cifar)
    assert sum('DIST' in pairs[p] for p in cifar) == 6
    for student in ('deeplabv3p_r18', 'deeplabv3p_mbv2'):
        assert pairs['voc', 'deeplabv3p_r101', student] == {'teacher', 'baseline', 'KD', 'AT',
                                                            'TaT'}
        assert pairs['cocostuff10k', 'deeplabv3p_r101', student] == {'teacher', 'baseline',
                                                                     'TaT'}


def _network(task_model) -> str:
    return task_model['net']['type'] if 'net' in task_model else task_model['encoder']


def _names(name: str) -> tuple:
    return NETWORKS.get(name, (name,))


CONFIG_ROWS = sorted({(r['dataset'], r['teacher'], r['student'], r['method']) for r in ROWS})


@pytest.mark.parametrize('key', CONFIG_ROWS, ids='/'.join)
def test_every_row_maps_to_its_config(key):
    dataset, teacher, student, method = key
    path = config_path(*key)
    assert os.path.isfile(os.path.join(ROOT, path)), path
    cfg = Config.fromfile(os.path.join(ROOT, path), import_custom_modules=False)
    assert cfg.train_dataloader.dataset.type == TRAIN_SETS[dataset], path
    model = cfg.model
    if method in ('teacher', 'baseline'):
        assert model.type != 'Distiller', path
        assert _network(model) in _names(teacher if method == 'teacher' else student), path
        return
    assert model.type == 'Distiller', path
    assert _network(model.student) in _names(student), path
    assert _network(model.teacher) in _names(teacher), path
    types = sorted(m.type for m in model.methods.values() if m is not None)
    expected = METHOD_TYPES[method]
    assert types == sorted(expected), (path, types)
