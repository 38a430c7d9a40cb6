"""Classification dataset readers on tiny files written in the official formats, with the
pipelines of the shipped configs."""
import os
import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image
from shared_setup import ROOT

import tasks.classification  # noqa: F401  (registers datasets and transforms)
from kdbench.registry import DATASETS

DATASET_CFGS = os.path.join(ROOT, 'configs', '_base_', 'datasets')


def _pipeline(dataset_cfg: str, loader: str) -> list:
    """The pipeline of ``<loader>.dataset`` in a shipped dataset config."""
    cfg = Config.fromfile(os.path.join(DATASET_CFGS, dataset_cfg))
    return cfg[loader].dataset.get('pipeline')


# --------------------------------------------------------------------------- CIFAR-100

N_CIFAR = 6
FINE_NAMES = [f'fine_{i:02d}' for i in range(100)]


def _cifar_entry(seed: int, n: int = N_CIFAR, labels=None) -> dict:
    rng = np.random.default_rng(seed)
    return {
        'data': rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        'fine_labels': list(labels) if labels is not None
        else [int(x) for x in rng.integers(0, 100, size=n)],
        'coarse_labels': [int(x) for x in rng.integers(0, 20, size=n)],
        'filenames': [f'img_{i}.png' for i in range(n)],
        'batch_label': 'tiny batch',
    }


def _write_cifar(root, train=None, test=None) -> dict:
    folder = root / 'cifar-100-python'
    folder.mkdir(parents=True, exist_ok=True)
    entries = dict(train=train or _cifar_entry(0), test=test or _cifar_entry(1))
    meta = dict(fine_label_names=FINE_NAMES,
                coarse_label_names=[f'coarse_{i:02d}' for i in range(20)])
    for name, obj in dict(entries, meta=meta).items():
        with open(folder / name, 'wb') as f:
            pickle.dump(obj, f)
    return entries


@pytest.fixture
def cifar_root(tmp_path):
    entries = _write_cifar(tmp_path)
    return tmp_path, entries


@pytest.mark.parametrize('split', ['train', 'test'])
def test_cifar100_reads_official_layout(cifar_root, split):
    root, entries = cifar_root
    ds = DATASETS.build(dict(type='CIFAR100', data_root=str(root), split=split))
    entry = entries[split]
    assert len(ds) == N_CIFAR
    assert ds.metainfo['classes'] == tuple(FINE_NAMES)
    for i in range(N_CIFAR):
        sample = ds[i]
        assert set(sample) == {'inputs', 'data_samples'}
        image = sample['inputs']
        assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
        assert sample['data_samples'] == dict(label=entry['fine_labels'][i])
        assert type(sample['data_samples']['label']) is int
        # Row-major planes: R = data[:1024], G = data[1024:2048], B = data[2048:].
        for c in range(3):
            plane = entry['data'][i, 1024 * c:1024 * (c + 1)].reshape(32, 32)
            assert torch.equal(image[c], torch.from_numpy(plane))
    # Spot check one pixel by hand: image 0, red plane, row 1, column 2.
    assert ds[0]['inputs'][0, 1, 2].item() == entries[split]['data'][0, 32 + 2]


def test_cifar100_config_pipeline_crops_padded_image_and_keeps_layout(cifar_root):
    root, entries = cifar_root
    pipeline = _pipeline('cifar100.py', 'train_dataloader')
    assert [t['type'] for t in pipeline] == ['RandomCrop', 'RandomHorizontalFlip']
    ds = DATASETS.build(dict(type='CIFAR100', data_root=str(root), split='train',
                             pipeline=pipeline))
    raw = DATASETS.build(dict(type='CIFAR100', data_root=str(root), split='train'))
    torch.manual_seed(0)
    for i in range(N_CIFAR):
        out = ds[i]['inputs']
        assert out.dtype == torch.uint8 and out.shape == (3, 32, 32)
        assert ds[i]['data_samples'] == raw[i]['data_samples']
        # The output is a 32x32 window of the zero-padded (possibly flipped) image.
        padded = torch.nn.functional.pad(raw[i]['inputs'], (4, 4, 4, 4))
        windows = [img[:, y:y + 32, x:x + 32] for img in (padded, padded.flip(-1))
                   for y in range(9) for x in range(9)]
        assert any(torch.equal(out, w) for w in windows)


def test_cifar100_missing_folder_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        DATASETS.build(dict(type='CIFAR100', data_root=str(tmp_path / 'nowhere')))
    assert os.path.join(str(tmp_path / 'nowhere'), 'cifar-100-python') in str(err.value)


def test_cifar100_missing_split_file_names_the_path(cifar_root):
    root, _ = cifar_root
    os.remove(root / 'cifar-100-python' / 'test')
    with pytest.raises(FileNotFoundError, match='cifar-100-python'):
        DATASETS.build(dict(type='CIFAR100', data_root=str(root), split='test'))


def test_cifar100_corrupt_pickle_names_the_file(cifar_root):
    root, _ = cifar_root
    path = root / 'cifar-100-python' / 'train'
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)
                     .tobytes())
    with pytest.raises(ValueError) as err:
        DATASETS.build(dict(type='CIFAR100', data_root=str(root), split='train'))
    assert str(path) in str(err.value)


@pytest.mark.parametrize('labels', [[0, 1, 2, 3, 4, 100], [-1, 0, 1, 2, 3, 4]])
def test_cifar100_labels_out_of_range(tmp_path, labels):
    _write_cifar(tmp_path, train=_cifar_entry(0, labels=labels))
    with pytest.raises(ValueError, match=r'\[0, 100\)'):
        DATASETS.build(dict(type='CIFAR100', data_root=str(tmp_path), split='train'))


def test_cifar100_label_count_mismatch(tmp_path):
    _write_cifar(tmp_path, train=_cifar_entry(0, labels=[1, 2, 3]))
    with pytest.raises(ValueError, match='6 images and 3 labels'):
        DATASETS.build(dict(type='CIFAR100', data_root=str(tmp_path), split='train'))


def test_cifar100_bad_data_shape(tmp_path):
    entry = _cifar_entry(0)
    entry['data'] = entry['data'][:, :1000]
    _write_cifar(tmp_path, train=entry)
    with pytest.raises(ValueError, match='train'):
        DATASETS.build(dict(type='CIFAR100', data_root=str(tmp_path), split='train'))


def test_cifar100_unknown_split(cifar_root):
    root, _ = cifar_root
    with pytest.raises(ValueError, match='val'):
        DATASETS.build(dict(type='CIFAR100', data_root=str(root), split='val'))


# ------------------------------------------------------------------------- image folder

def _rgb(seed: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture
def folder_root(tmp_path):
    """train/{cat,dog}/*.png and val/{cat,dog}/*.jpg; returns the root and the arrays."""
    arrays = {}
    for split, ext in (('train', 'png'), ('val', 'jpg')):
        for c, cls in enumerate(('dog', 'cat')):        # written unsorted on purpose
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for k in range(2):
                if split == 'val':       # smooth image: JPEG keeps it close
                    array = np.full((300, 260, 3), 40 + 100 * c + 20 * k, np.uint8)
                else:
                    array = _rgb(10 * c + k, 20 + k, 24)
                path = folder / f'{k}.{ext}'
                Image.fromarray(array).save(path)
                arrays[str(path)] = array
    (tmp_path / 'train' / 'cat' / 'notes.txt').write_text('not an image')
    return tmp_path, arrays


def test_image_folder_classes_labels_and_exact_png_pixels(folder_root):
    root, arrays = folder_root
    ds = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(root), split='train'))
    assert ds.metainfo['classes'] == ('cat', 'dog')
    assert len(ds) == 4                                   # notes.txt is not listed
    labels = [ds[i]['data_samples']['label'] for i in range(len(ds))]
    assert labels == [0, 0, 1, 1]
    for i, (path, label) in enumerate(ds.samples):
        assert os.path.basename(os.path.dirname(path)) == ds.metainfo['classes'][label]
        image = ds[i]['inputs']
        assert image.dtype == torch.uint8
        assert torch.equal(image, torch.from_numpy(arrays[path]).permute(2, 0, 1))


def test_image_folder_val_shares_train_classes(folder_root):
    root, arrays = folder_root
    # A class missing from val keeps the train class index.
    for f in (root / 'val' / 'cat').iterdir():
        f.unlink()
    (root / 'val' / 'cat').rmdir()
    ds = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(root), split='val'))
    assert ds.metainfo['classes'] == ('cat', 'dog')
    assert [ds[i]['data_samples']['label'] for i in range(len(ds))] == [1, 1]


def test_image_folder_val_pipeline_from_config(folder_root):
    root, arrays = folder_root
    pipeline = _pipeline('imagenet.py', 'val_dataloader')
    assert [t['type'] for t in pipeline] == ['Resize', 'CenterCrop']
    ds = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(root), split='val',
                             pipeline=pipeline))
    assert len(ds) == 4
    for i, (path, _) in enumerate(ds.samples):
        out = ds[i]['inputs']
        assert out.dtype == torch.uint8 and out.shape == (3, 224, 224)
        # Flat colour images survive JPEG, resizing and cropping almost unchanged.
        expected = torch.from_numpy(arrays[path][0, 0].astype(np.float32))
        assert torch.allclose(out.float().mean((1, 2)), expected, atol=3)


def test_image_folder_train_pipeline_from_config(folder_root):
    root, _ = folder_root
    pipeline = _pipeline('imagenet.py', 'train_dataloader')
    ds = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(root), split='train',
                             pipeline=pipeline))
    torch.manual_seed(0)
    out = ds[0]['inputs']
    assert out.dtype == torch.uint8 and out.shape == (3, 224, 224)


def test_image_folder_grayscale_and_rgba_become_rgb(tmp_path):
    gray = np.random.default_rng(0).integers(0, 256, size=(9, 11), dtype=np.uint8)
    rgba = np.random.default_rng(1).integers(0, 256, size=(5, 6, 4), dtype=np.uint8)
    (tmp_path / 'train' / 'a').mkdir(parents=True)
    Image.fromarray(gray, mode='L').save(tmp_path / 'train' / 'a' / 'gray.png')
    Image.fromarray(rgba, mode='RGBA').save(tmp_path / 'train' / 'a' / 'rgba.png')
    ds = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(tmp_path)))
    by_name = {os.path.basename(p): i for i, (p, _) in enumerate(ds.samples)}
    image = ds[by_name['gray.png']]['inputs']
    assert image.shape == (3, 9, 11)
    for c in range(3):
        assert torch.equal(image[c], torch.from_numpy(gray))
    image = ds[by_name['rgba.png']]['inputs']
    assert torch.equal(image, torch.from_numpy(rgba[..., :3]).permute(2, 0, 1))


def test_image_folder_extensions_are_case_insensitive(tmp_path):
    array = _rgb(0, 6, 7)
    (tmp_path / 'train' / 'a').mkdir(parents=True)
    Image.fromarray(array).save(tmp_path / 'train' / 'a' / 'x.PNG', format='PNG')
    Image.fromarray(array).save(tmp_path / 'train' / 'a' / 'y.JPEG', format='JPEG')
    Image.fromarray(array).save(tmp_path / 'train' / 'a' / 'z.bmp', format='BMP')
    ds = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(tmp_path)))
    # BMP is not decodable by torchvision, so it is not listed.
    assert sorted(os.path.basename(p) for p, _ in ds.samples) == ['x.PNG', 'y.JPEG']
    assert torch.equal(ds[0]['inputs'], torch.from_numpy(array).permute(2, 0, 1))
    assert ds[1]['inputs'].shape == (3, 6, 7)


def test_image_folder_corrupt_image_names_the_file(tmp_path):
    (tmp_path / 'train' / 'a').mkdir(parents=True)
    path = tmp_path / 'train' / 'a' / 'x.jpg'
    path.write_bytes(b'definitely not a jpeg' * 10)
    ds = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(tmp_path)))
    assert len(ds) == 1
    with pytest.raises(ValueError) as err:
        ds[0]
    assert str(path) in str(err.value)


def test_image_folder_missing_split(folder_root):
    root, _ = folder_root
    with pytest.raises(FileNotFoundError) as err:
        DATASETS.build(dict(type='ImageFolderDataset', data_root=str(root), split='test'))
    assert os.path.join(str(root), 'test') in str(err.value)


def test_image_folder_without_images(tmp_path):
    (tmp_path / 'train' / 'a').mkdir(parents=True)
    (tmp_path / 'train' / 'a' / 'readme.txt').write_text('x')
    (tmp_path / 'train' / 'b').mkdir()
    with pytest.raises(FileNotFoundError, match='No images'):
        DATASETS.build(dict(type='ImageFolderDataset', data_root=str(tmp_path)))


# ------------------------------------------------------------------------------ digits

@pytest.fixture(scope='module')
def digits():
    from sklearn.datasets import load_digits
    build = lambda **kw: DATASETS.build(dict(type='DigitsDataset', **kw))  # noqa: E731
    return dict(target=load_digits().target, train=build(split='train'),
                test=build(split='test'), all=build(split='train', test_fraction=0.0),
                build=build)


def _keys(ds):
    return Counter((ds.images[i].numpy().tobytes(), int(ds.labels[i]))
                   for i in range(len(ds)))


def test_digits_split_sizes_and_layout(digits):
    train, test = digits['train'], digits['test']
    assert len(train) + len(test) == 1797 == len(digits['all'])
    per_class = np.bincount(digits['target'], minlength=10)
    n_train = np.bincount(train.labels, minlength=10)
    n_test = np.bincount(test.labels, minlength=10)
    assert (n_train + n_test == per_class).all()
    assert (n_test == np.round(per_class * 0.25).astype(int)).all()
    assert train.metainfo['classes'] == tuple(str(d) for d in range(10))
    for ds in (train, test):
        for i in (0, len(ds) - 1):
            sample = ds[i]
            image = sample['inputs']
            assert image.dtype == torch.uint8 and image.shape == (3, 16, 16)
            assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])
            assert 0 <= sample['data_samples']['label'] <= 9
        assert set(ds.labels.tolist()) == set(range(10))
        assert ds.images.max() > 200 and ds.images.min() == 0


def test_digits_train_and_test_partition_the_data(digits):
    # Every image goes to exactly one split: train + test is the full set as a multiset.
    assert _keys(digits['train']) + _keys(digits['test']) == _keys(digits['all'])


def test_digits_split_is_deterministic_per_seed(digits):
    again = digits['build'](split='test')
    assert torch.equal(again.images, digits['test'].images)
    assert (again.labels == digits['test'].labels).all()
    other = digits['build'](split='test', seed=1)
    assert len(other) == len(digits['test'])
    assert _keys(other) != _keys(digits['test'])


def test_digits_size_and_pipeline_from_config(digits):
    big = digits['build'](split='test', size=32)
    assert big[0]['inputs'].shape == (3, 32, 32)
    pipeline = _pipeline('digits.py', 'train_dataloader')
    ds = digits['build'](split='test', pipeline=pipeline)
    torch.manual_seed(0)
    out = ds[0]['inputs']
    assert out.dtype == torch.uint8 and out.shape == (3, 16, 16)


def test_digits_unknown_split():
    with pytest.raises(ValueError, match='val'):
        DATASETS.build(dict(type='DigitsDataset', split='val'))
