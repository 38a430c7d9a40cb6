"""The held-out validation split: the index split, and the HoldoutSplit wrapper on every
shipped dataset (tiny data written in each official layout)."""
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import tasks.classification  # noqa: F401  (registers the datasets)
import tasks.segmentation  # noqa: F401
from kdbench.data_contract import holdout_default, item_classes
from kdbench.holdout import HoldoutSplit, class_shares, holdout_indices
from kdbench.registry import DATASETS
from segmentation.seg_data import coco_maps, write_cocostuff, write_voc


def test_parts_are_sorted_disjoint_cover_and_deterministic():
    held, rest = holdout_indices(50, seed=3, size=12)
    assert len(held) == 12 and len(rest) == 38
    assert np.array_equal(np.sort(np.concatenate([held, rest])), np.arange(50))
    assert np.all(np.diff(held) > 0) and np.all(np.diff(rest) > 0)
    again, _ = holdout_indices(50, seed=3, size=12)
    other, _ = holdout_indices(50, seed=4, size=12)
    assert np.array_equal(held, again) and not np.array_equal(held, other)


def test_fraction_rounds_to_the_nearest_item():
    assert len(holdout_indices(47, seed=0, fraction=0.1)[0]) == 5       # 4.7
    assert len(holdout_indices(44, seed=0, fraction=0.1)[0]) == 4       # 4.4


def test_largest_remainder_shares_ties_to_the_lower_class():
    # exact shares 2.5, 1.5, 1.0: one item left over, the tie goes to class 0
    assert class_shares(np.array([5, 3, 2]), 5).tolist() == [3, 1, 1]
    assert class_shares(np.array([500] * 100), 5000).tolist() == [50] * 100


def test_stratified_split_gives_each_class_its_share():
    classes = np.repeat([7, 2, 9], [30, 20, 10])       # any class values, any order
    classes = np.random.default_rng(0).permutation(classes)
    held, rest = holdout_indices(60, seed=1, size=12, classes=classes)
    counts = {c: int((classes[held] == c).sum()) for c in (2, 7, 9)}
    assert counts == {7: 6, 2: 4, 9: 2}
    assert len(rest) == 48


@pytest.mark.parametrize('kwargs, match', [
    (dict(size=0), r'validation.size=0 .* empty'),
    (dict(fraction=0.01), r'validation.fraction=0.01 \(0 items\) .* empty'),
    (dict(size=10), r'validation.size=10 holds out the whole training set of 10'),
    (dict(size=11), r'whole training set of 10 items \(or more\)'),
    (dict(fraction=0.99), r'whole training set'),
    (dict(), r'give one of size'),
    (dict(size=2, fraction=0.5), r'give one of size'),
])
def test_sizes_that_leave_a_part_empty_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        holdout_indices(10, seed=0, **kwargs)


def test_a_class_that_would_lose_all_its_training_items_is_refused():
    classes = np.array([0] + [1] * 9)         # class 0: share 0.5 -> rounds up to its 1 item
    with pytest.raises(ValueError, match='holds out all 1 items of class 0'):
        holdout_indices(10, seed=0, size=5, classes=classes)


def test_a_class_whose_share_rounds_to_zero_keeps_all_its_items():
    classes = np.array([0] + [1] * 19)
    held, _ = holdout_indices(20, seed=0, size=4, classes=classes)
    assert len(held) == 4 and 0 not in held


def test_classes_must_match_the_items():
    with pytest.raises(ValueError, match='one class per item'):
        holdout_indices(10, seed=0, size=2, classes=np.zeros(9))


def test_unknown_part_is_refused():
    with pytest.raises(ValueError, match="part must be one of"):
        HoldoutSplit(list(range(10)), part='test', size=2)


# ------------------------------------------------------------------ per shipped dataset

def _parts(dataset: dict, **split):
    """(val part, train part, the wrapped dataset) of ``dataset``."""
    val = DATASETS.build(dict(type='HoldoutSplit', dataset=dataset, part='val', **split))
    train = DATASETS.build(dict(type='HoldoutSplit', dataset=dataset, part='train', **split))
    return val, train, DATASETS.build(dataset)


def _same_sample(a: dict, b: dict) -> bool:
    return torch.equal(a['inputs'], b['inputs']) and all(
        torch.equal(torch.as_tensor(a['data_samples'][k]), torch.as_tensor(v))
        for k, v in b['data_samples'].items())


def check_split(dataset: dict, held: int, stratified: bool, **split) -> None:
    """The parts hold ``held`` and the rest of the items, disjoint, covering the dataset,
    as the same samples; the same again from the same seed; stratified per class when
    ``stratified`` (each class its largest-remainder share)."""
    val, train, whole = _parts(dataset, **split)
    assert len(val) == held and len(train) == len(whole) - held
    assert not set(val.indices) & set(train.indices)
    assert sorted([*val.indices, *train.indices]) == list(range(len(whole)))
    for part in (val, train):
        for i in (0, len(part) - 1):
            assert _same_sample(part[i], whole[int(part.indices[i])])
    again, _, _ = _parts(dataset, **split)
    assert np.array_equal(again.indices, val.indices)
    classes = item_classes(whole)
    assert (classes is not None) == stratified
    if stratified:
        values, counts = np.unique(classes, return_counts=True)
        expected = class_shares(counts, held)
        got = [int((classes[val.indices] == v).sum()) for v in values]
        assert got == expected.tolist()
        assert np.array_equal(val.labels, np.asarray(whole.labels)[val.indices])


def test_cifar100(tmp_path):
    folder = tmp_path / 'cifar-100-python'
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = [int(c) for c in rng.permutation(np.repeat(np.arange(4), [10, 8, 6, 6]))]
    entry = dict(data=rng.integers(0, 256, (30, 3072), dtype=np.uint8), fine_labels=labels)
    meta = dict(fine_label_names=[f'c{i}' for i in range(100)])
    for name, obj in (('train', entry), ('test', entry), ('meta', meta)):
        with open(folder / name, 'wb') as f:
            pickle.dump(obj, f)
    dataset = dict(type='CIFAR100', data_root=str(tmp_path), split='train')
    check_split(dataset, 10, True, size=10, seed=2)
    check_split(dataset, 6, True, fraction=0.2, seed=0)


def test_image_folders(tmp_path):
    for c, count in enumerate((6, 4)):
        folder = tmp_path / 'train' / f'class{c}'
        folder.mkdir(parents=True)
        for k in range(count):
            image = np.full((6, 5, 3), 20 * k + 100 * c, np.uint8)
            Image.fromarray(image).save(folder / f'{k}.png')
    check_split(dict(type='ImageFolderDataset', data_root=str(tmp_path)), 5, True, size=5)


def test_digits_with_its_default_size():
    dataset = dict(type='DigitsDataset', split='train')
    assert holdout_default(DATASETS.get('DigitsDataset')) == {'fraction': 0.2}
    check_split(dataset, 269, True, seed=0)                  # round(1347 * 0.2)


def test_reduced_digits():
    reduced = dict(type='ClassSubsetDataset', num_classes=10, fraction=0.1,
                   dataset=dict(type='DigitsDataset', split='train'))
    check_split(reduced, 30, True, size=30)


def test_voc_by_image(tmp_path):
    write_voc(tmp_path, n=6)
    check_split(dict(type='VOCAugDataset', data_root=str(tmp_path)), 2, False, size=2)


def test_cocostuff_by_image(tmp_path):
    maps = coco_maps()
    maps.update({f'{name}_copy': raw for name, raw in coco_maps().items()})
    write_cocostuff(tmp_path, maps)
    check_split(dict(type='COCOStuff10kDataset', data_root=str(tmp_path)), 1, False, size=1)


def test_digit_scenes_by_scene_with_the_default_fraction():
    scenes = dict(type='DigitsSegmentationDataset', split='train', num_images=20, size=32,
                  digit_sides=(8, 12))
    check_split(scenes, 4, False)                            # 20 * 0.2


def test_every_shipped_dataset_states_its_default():
    shipped = {'CIFAR100': {'size': 5000}, 'ImageFolderDataset': {'fraction': 0.04},
               'DigitsDataset': {'fraction': 0.2}, 'VOCAugDataset': {'fraction': 0.1},
               'COCOStuff10kDataset': {'size': 1000},
               'DigitsSegmentationDataset': {'fraction': 0.2}}
    assert {name: holdout_default(DATASETS.get(name)) for name in shipped} == shipped


def test_cifar100_default_is_torchdistills_45k_5k():
    labels = np.repeat(np.arange(100), 500)
    held, rest = holdout_indices(50000, seed=0, classes=labels,
                                 **holdout_default(DATASETS.get('CIFAR100')))
    assert len(held) == 5000 and len(rest) == 45000
    assert np.all(np.bincount(labels[held]) == 50)
