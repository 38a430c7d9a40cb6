"""A record of what produced a run: code version, packages, seed, hardware, command."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata

import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook

from kdbench.registry import HOOKS

PACKAGES = ('kdbench', 'torch', 'torchvision', 'mmengine', 'numpy',
            'segmentation-models-pytorch', 'albumentations', 'pycocotools')


def git_commit(path: str) -> str:
    """``<sha>`` of the repository holding ``path`` (``+dirty`` with local changes), or
    ``'unknown'`` outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(['git', *args], cwd=path, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        return git('rev-parse', 'HEAD') + ('+dirty' if git('status', '--porcelain') else '')
    except (OSError, subprocess.SubprocessError):
        return 'unknown'


def package_versions() -> dict:
    """The installed version of each of :data:`PACKAGES` (``None`` when missing)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def environment_record(runner) -> dict:
    versions = package_versions()
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return dict(
        git_commit=git_commit(os.path.dirname(os.path.abspath(__file__))),
        command=' '.join(sys.argv), seed=runner.seed, world_size=runner.world_size,
        python=sys.version.split()[0], packages=versions,
        hardware=dict(machine=platform.machine(), processor=platform.processor(),
                      cpu_count=os.cpu_count(), gpus=gpus, system=platform.platform()))


@HOOKS.register_module()
class EnvironmentRecordHook(Hook):
    """Write ``environment.json`` (git commit, package versions, seed, world size,
    hardware, command line) beside mmengine's log and resolved config in the run's
    timestamped log dir, once, from rank 0."""

    priority = 'VERY_LOW'

    @master_only
    def before_run(self, runner) -> None:
        os.makedirs(runner.log_dir, exist_ok=True)
        with open(os.path.join(runner.log_dir, 'environment.json'), 'w') as f:
            json.dump(environment_record(runner), f, indent=2)
