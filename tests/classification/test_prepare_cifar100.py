"""tools/prepare_cifar100.py: checks torchvision's CIFAR100(root, download=True) layout
(the one the configs read) on tiny pickles; --download goes through torchvision (never run
here)."""
import os
import runpy
import sys

import pytest
import torchvision.datasets
from test_datasets import N_CIFAR, _write_cifar
from shared_setup import ROOT

from tasks.classification.prepare import check_cifar100, download_cifar100, modified_files

SCRIPT = os.path.join(ROOT, 'tools', 'prepare_cifar100.py')


def test_check_reads_both_splits_and_wants_the_official_sizes(tmp_path):
    _write_cifar(tmp_path)
    assert check_cifar100(str(tmp_path), full=False) == dict(train=N_CIFAR, test=N_CIFAR)
    with pytest.raises(ValueError, match=r"has \{'train': 6, 'test': 6\} images, expected "
                                         r"\{'train': 50000, 'test': 10000\}"):
        check_cifar100(str(tmp_path))
    folder = tmp_path / 'cifar-100-python'
    assert modified_files(str(tmp_path)) == [str(folder / n) for n in ('train', 'test', 'meta')]


def test_missing_folder_points_to_the_script(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python/meta' not found: .*"
                                                r'tools/prepare_cifar100.py --download'):
        check_cifar100(str(tmp_path))


def test_download_is_torchvisions(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(torchvision.datasets, 'CIFAR100', lambda *a, **k: calls.append((a, k)))
    download_cifar100(str(tmp_path))
    assert calls == [((str(tmp_path),), dict(train=True, download=True))]


def test_script(tmp_path, monkeypatch, capsys):
    _write_cifar(tmp_path)
    monkeypatch.setattr(sys, 'argv', [SCRIPT, '--root', str(tmp_path)])
    with pytest.raises(SystemExit, match='prepare_cifar100: CIFAR-100 at .* has'):
        runpy.run_path(SCRIPT, run_name='__main__')
    monkeypatch.setattr(sys, 'argv', [SCRIPT, '--root', str(tmp_path), '--any-size'])
    runpy.run_path(SCRIPT, run_name='__main__')
    out = capsys.readouterr().out
    assert f'train {N_CIFAR}, test {N_CIFAR} images' in out
    assert out.count('differs from the official release (md5)') == 3
