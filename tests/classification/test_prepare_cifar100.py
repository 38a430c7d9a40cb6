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

from tasks.classification.prepare import (DownloadError, check_cifar100, download_cifar100,
                                          modified_files)

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


def test_offline_download_says_what_to_place_where_and_leaves_no_folder(tmp_path, monkeypatch):
    root = tmp_path / 'data' / 'cifar100'
    unreachable = 'http://127.0.0.1:9/cifar-100-python.tar.gz'      # nothing listens there
    monkeypatch.setattr(sys, 'argv', [SCRIPT, '--download', '--url', unreachable,
                                      '--root', str(root)])
    with pytest.raises(SystemExit) as failed:
        runpy.run_path(SCRIPT, run_name='__main__')
    message = str(failed.value.code)
    assert message.startswith(f'prepare_cifar100: could not download CIFAR-100 from '
                              f'{unreachable} (URLError')
    for part in ('cifar-100-python.tar.gz (md5 eb9058c3a382ffc7106e4002c42a8d85)',
                 f'put it at {root / "cifar-100-python.tar.gz"} and run this again with '
                 '--download', f'{root / "cifar-100-python"}/{{train,test,meta}}'):
        assert part in message, message
    assert os.listdir(tmp_path) == []             # data/cifar100 was made, then removed


def test_a_failed_download_keeps_a_folder_that_was_there(tmp_path):
    (tmp_path / 'notes.txt').write_text('mine')
    with pytest.raises(DownloadError):
        download_cifar100(str(tmp_path), 'http://127.0.0.1:9/cifar-100-python.tar.gz')
    assert os.listdir(tmp_path) == ['notes.txt']
