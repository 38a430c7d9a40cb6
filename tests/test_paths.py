"""Shipped configs are found in the checkout kdbench runs from (kdbench/paths.py); without
a checkout (kdbench installed on its own) the error says so and what to do."""
import os
import shutil
import subprocess
import sys

import pytest
from shared_setup import ROOT

import kdbench
from kdbench.benchmark import gpu_check
from kdbench.paths import CheckoutNotFoundError, config_path, repo_root

KD_CIFAR = 'configs/cls/kd_resnet32x4_resnet8x4_cifar100.py'


def test_configs_are_found_in_the_checkout_from_any_working_directory(tmp_path, monkeypatch):
    assert repo_root() == ROOT
    monkeypatch.chdir(tmp_path)
    assert config_path(KD_CIFAR) == os.path.join(ROOT, KD_CIFAR)
    assert gpu_check.has_config(KD_CIFAR)
    assert not gpu_check.has_config('configs/cls/no_such_config.py')
    own = tmp_path / 'configs' / 'cls' / 'kd_resnet32x4_resnet8x4_cifar100.py'
    own.parent.mkdir(parents=True)
    own.write_text('')
    assert config_path(KD_CIFAR) == KD_CIFAR          # the working directory's file first
    assert config_path(str(tmp_path / 'x.py')) == str(tmp_path / 'x.py')


def test_without_a_checkout_the_error_says_what_to_do(tmp_path):
    """kdbench's package copied to a folder without configs/ next to it, as pip installs it."""
    site = tmp_path / 'site-packages'
    shutil.copytree(os.path.dirname(kdbench.__file__), site / 'kdbench',
                    ignore=shutil.ignore_patterns('__pycache__'))
    code = ('from kdbench.paths import config_path\n'
            f'config_path({KD_CIFAR!r})\n')
    done = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(site)), timeout=120)
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith('kdbench.paths.CheckoutNotFoundError: ')
    assert f"no '{site / 'configs'}' folder" in error
    assert 'Run kdbench from a clone' in error and 'pass the path of a config file' in error


def test_an_existing_config_path_needs_no_checkout(tmp_path, monkeypatch):
    monkeypatch.setattr('kdbench.paths.PACKAGE_DIR', str(tmp_path / 'site' / 'kdbench'))
    with pytest.raises(CheckoutNotFoundError, match='installed without its checkout'):
        repo_root()
    config = tmp_path / 'mine.py'
    config.write_text('')
    monkeypatch.chdir(tmp_path)
    assert config_path('mine.py') == 'mine.py'
    with pytest.raises(CheckoutNotFoundError):
        config_path(KD_CIFAR)
