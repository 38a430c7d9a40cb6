"""setup.cfg: every third-party package kdbench and the task plugins import is declared,
and the version ranges admit both the pinned CPU stack and a GPU machine's (Python 3.12,
torch 2.11, torchvision 0.26; docs/gpu.md)."""
import ast
import os
import sys
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from setuptools.config.setupcfg import read_configuration
from shared_setup import ROOT

#: cv2 is installed by mmengine (opencv-python) or albumentations (opencv-python-headless);
#: declaring one name would conflict with the other (see setup.cfg).
UNDECLARED = {'cv2'}


def options() -> dict:
    return read_configuration(os.path.join(ROOT, 'setup.cfg'))['options']


def requirements(extras: bool = True) -> dict:
    lines = list(options()['install_requires'])
    if extras:
        lines += [r for group in options()['extras_require'].values() for r in group]
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def imported_modules() -> dict:
    """Top-level third-party modules imported anywhere in kdbench/ and tasks/."""
    found = {}
    for package in ('kdbench', 'tasks'):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in (f for f in files if f.endswith('.py')):
                path = os.path.join(folder, name)
                with open(path) as f:
                    tree = ast.parse(f.read())
                for node in ast.walk(tree):
                    if isinstance(node, ast.Import):
                        modules = [alias.name for alias in node.names]
                    elif isinstance(node, ast.ImportFrom) and node.level == 0:
                        modules = [node.module]
                    else:
                        continue
                    for top in (m.split('.')[0] for m in modules):
                        if top not in sys.stdlib_module_names and top not in (
                                'kdbench', 'tasks'):
                            found.setdefault(top, os.path.relpath(path, ROOT))
    return found


def test_every_imported_package_is_declared():
    declared = requirements()
    distributions = metadata.packages_distributions()
    missing = {module: where for module, where in imported_modules().items()
               if module not in UNDECLARED and not any(
                   canonicalize_name(d) in declared for d in distributions.get(module, []))}
    assert not missing, f'imported but not in setup.cfg install_requires/extras: {missing}'


def test_ranges_admit_the_gpu_stack_and_the_pinned_one():
    required = requirements(extras=False)
    for name, versions in (('torch', ('2.11.0', '2.14.1')),
                           ('torchvision', ('0.26.0', '0.29.1')),
                           ('mmengine', ('0.10.7',)),
                           ('segmentation-models-pytorch', ('0.6.0',)),
                           ('albumentations', ('2.0.8',)),
                           ('pycocotools', ('2.0.11',))):
        for version in versions:
            assert required[name].specifier.contains(version), (name, version)
    assert Requirement(f"python{options()['python_requires']}").specifier.contains('3.12')
    assert not required['torch'].specifier.contains('2.0.1')     # no torch.compile before 2.0
