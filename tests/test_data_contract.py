"""The dataset contract (kdbench/data_contract.py): a dataset implementing no hook gets each
default from the readers, one implementing them is read through them, and the shipped task
datasets and metrics implement it."""
import pytest
import torch
from torch.utils.data import ConcatDataset, Dataset, TensorDataset

from kdbench import data_contract as contract
from kdbench.data_contract import KDDataset, KDTestMetric


class _Bare(Dataset):
    """Neither derived from KDDataset nor implementing a hook."""

    def __init__(self):
        self.loaded = []

    def __len__(self):
        return 3

    def __getitem__(self, index):
        self.loaded.append(index)
        return index


class _Defaults(KDDataset):
    """Derived from KDDataset, overriding nothing; ``samples`` as torchvision's folders."""

    samples = [('a.jpg', 0), ('b.jpg', 1)]

    def __init__(self):
        self.loaded = []

    def __len__(self):
        return 2

    def __getitem__(self, index):
        self.loaded.append(index)
        return index


class _Full(KDDataset):
    """Implements every dataset hook."""

    SPLIT_SIZES = {'train': 7}

    def __init__(self):
        self.checked = []

    @staticmethod
    def required_files(data_root, split='train', **options):
        return {'split file': f'{data_root}/{split}.txt', 'options': str(sorted(options))}

    def sample_files(self):
        yield from ('x.png', 'y.png')

    def check_sample(self, index):
        self.checked.append(index)

    def __len__(self):
        return 7

    def __getitem__(self, index):
        raise AssertionError('check_sample must not load through the pipeline')


class _Writes(KDTestMetric):
    sample_writer = 'MyWriter'


@pytest.mark.parametrize('dataset', [_Bare(), TensorDataset(torch.zeros(3)),
                                     ConcatDataset([_Bare(), _Bare()])])
def test_datasets_without_hooks_get_the_defaults(dataset):
    assert contract.required_files(type(dataset), dict(data_root='/d', split='train')) == {}
    assert contract.split_sizes(type(dataset)) == {}
    assert list(contract.sample_files(dataset)) == []
    assert not contract.checks_samples(dataset)
    assert contract.sample_checker(dataset)(1) == dataset[1]


def test_unknown_types_and_metrics_get_the_defaults():
    assert contract.required_files(None, dict(data_root='/d')) == {}
    assert contract.split_sizes(None) == {}
    assert contract.sample_writer(None) is None
    assert contract.sample_writer(object) is None
    assert contract.sample_writer(KDTestMetric) is None


def test_kddataset_defaults():
    dataset = _Defaults()
    assert contract.required_files(_Defaults, dict(data_root='/d', split='val')) == {}
    assert contract.split_sizes(_Defaults) == {}
    assert list(contract.sample_files(dataset)) == ['a.jpg', 'b.jpg']
    assert not contract.checks_samples(dataset)
    contract.sample_checker(dataset)(1)
    dataset.check_sample(0)
    assert dataset.loaded == [1, 0]          # loaded through __getitem__ (the pipeline)


def test_implemented_hooks_are_read_through_the_readers():
    dataset = _Full()
    assert contract.required_files(_Full, dict(data_root='/d', split='val', pipeline=[])) == \
        {'split file': '/d/val.txt', 'options': "['pipeline']"}
    assert contract.split_sizes(_Full) == {'train': 7}
    assert list(contract.sample_files(dataset)) == ['x.png', 'y.png']
    assert contract.checks_samples(dataset)
    contract.sample_checker(dataset)(4)
    assert dataset.checked == [4]
    assert contract.sample_writer(_Writes) == 'MyWriter'


def test_shipped_datasets_and_metrics_implement_the_contract():
    from tasks.classification.datasets import CIFAR100, ClassSubsetDataset, DigitsDataset
    from tasks.classification.metrics import TopKAccuracy
    from tasks.segmentation.datasets import COCOStuff10kDataset, VOCAugDataset
    from tasks.segmentation.metrics import IoUMetric
    for cls in (CIFAR100, ClassSubsetDataset, DigitsDataset, VOCAugDataset,
                COCOStuff10kDataset):
        assert issubclass(cls, KDDataset)
    assert contract.split_sizes(CIFAR100) == {'train': 50000, 'test': 10000}
    assert contract.required_files(VOCAugDataset, dict(data_root='/v', split='val')) == \
        {'split file': '/v/ImageSets/Segmentation/val.txt'}
    assert contract.sample_writer(TopKAccuracy) == 'ClsSampleWriter'
    assert contract.sample_writer(IoUMetric) == 'SegSampleWriter'
    digits = DigitsDataset(split='test')
    assert contract.checks_samples(digits) and list(contract.sample_files(digits)) == []


def test_how_to_prepare_is_read_through_its_reader():
    from tasks.classification.datasets import CIFAR100, DigitsDataset
    for cls in (None, _Bare, _Defaults, DigitsDataset):       # no hint: nothing to prepare
        assert contract.how_to_prepare(cls) is None
    assert contract.how_to_prepare(CIFAR100).startswith(
        'python tools/prepare_cifar100.py --download')
