"""The method table (kdbench/distill/table.py): suites, the overhead benchmark and the tests
find the methods in the registry; a new method is found without editing any list."""
import os

import pytest
from mmengine.config import Config
from shared_setup import ROOT, registered_method

from kdbench.benchmark import Suite, overhead, targets
from kdbench.distill import DistillMethod, method_by_prefix, registered_methods

SUITES = os.path.join(ROOT, 'configs', 'suites')

# The suites' method dicts before the method table (display name -> config prefix): the
# expansion must stay exactly these runs, in this order.
CLS = {'KD': 'kd', 'AT': 'at', 'CAT-KD': 'cat_kd', 'TaT': 'tat'}
VOC = {**CLS, 'TaT (official protocol)': 'tat_official', 'CWD': 'cwd', 'DKD': 'dkd',
       'DIST': 'dist', 'FitNet': 'fitnet'}
BEFORE = {'cifar100': {**CLS, 'DKD': 'dkd', 'DIST': 'dist', 'FitNet': 'fitnet'},
          'imagenet': {**CLS, 'DKD': 'dkd', 'DIST': 'dist'}, 'voc': VOC, 'cocostuff10k': VOC,
          'demo_cls': CLS, 'demo_seg': CLS}
BEFORE['cifar100_released'] = BEFORE['cifar100']


@pytest.mark.parametrize('name', sorted(BEFORE))
def test_shipped_suites_expand_to_the_runs_they_had(name, tmp_path):
    path = os.path.join(SUITES, f'{name}.py')
    spec, expected = Config.fromfile(path), []
    for teacher, student, *pair in spec.pairs:
        pair = pair[0] if pair else f'{teacher}_{student}'
        expected += [(f'{shown} {teacher} -> {student}', f'{prefix}_{pair}_{spec.dataset}.py')
                     for shown, prefix in BEFORE[name].items()]
    suite = Suite(path, str(tmp_path))
    found = [(r.name, os.path.basename(r.config)) for r in suite.runs
             if r.role not in ('teacher', 'baseline') and r.kind == 'run']   # not grid trials
    assert found == expected


def test_registered_methods_declare_their_names():
    table = {e.name: e for e in registered_methods()}
    assert list(table) == ['KD', 'AT', 'CATKD', 'TaT', 'CWD', 'DKD', 'DIST', 'FitNet']
    assert (table['CATKD'].display_name, table['CATKD'].config_prefix) == ('CAT-KD', 'cat_kd')
    assert method_by_prefix('fitnet').name == 'FitNet'
    with pytest.raises(KeyError, match="config prefix 'nope'; known: .*'cat_kd'"):
        method_by_prefix('nope')


@pytest.fixture
def toy_method():
    """A method registered for the test only (removed after), with a CIFAR-100 config for
    resnet32x4 -> resnet8x4 written to a temporary config folder by the test."""
    class Toy(DistillMethod):
        display_name, config_prefix = 'Toy-KD', 'toy_kd'

    with registered_method(Toy):
        yield Toy


def test_a_new_method_is_found_everywhere_from_its_own_files(toy_method, tmp_path):
    configs = tmp_path / 'configs'
    configs.mkdir()
    cls = os.path.join(ROOT, 'configs', 'cls')
    for name in ('resnet32x4_cifar100.py', 'resnet8x4_cifar100.py',
                 'kd_resnet32x4_resnet8x4_cifar100.py'):
        (configs / name).write_text(f"_base_ = ['{os.path.join(cls, name)}']\n")
    (configs / 'toy_kd_resnet32x4_resnet8x4_cifar100.py').write_text(
        f"_base_ = ['{os.path.join(cls, 'kd_resnet32x4_resnet8x4_cifar100.py')}']\n")
    (tmp_path / 'suite.py').write_text(
        "dataset = 'cifar100'\nconfig_dir = 'configs'\nmetric = 'accuracy/top1'\n"
        "pairs = [('resnet32x4', 'resnet8x4')]\n")               # methods: the default
    runs = Suite(str(tmp_path / 'suite.py'), str(tmp_path / 'work')).runs
    assert [(r.role, os.path.basename(r.config)) for r in runs[2:]] == [
        ('KD', 'kd_resnet32x4_resnet8x4_cifar100.py'),
        ('Toy-KD', 'toy_kd_resnet32x4_resnet8x4_cifar100.py')]
    assert overhead.methods()[-1] == 'toy_kd'
    assert targets.ratio_target('voc', 'toy_kd') == targets.DEFAULT_TARGET == 1.05
    assert targets.ratio_target('cifar', 'toy_kd') == 1.05
    assert registered_methods()[-1].cls is toy_method        # what the contract tests use
    assert 'Toy' not in [e.name for e in registered_methods()[:-1]]


def test_suite_names_of_unknown_methods_are_errors(tmp_path):
    base = ("dataset = 'cifar100'\nconfig_dir = '../configs/cls'\nmetric = 'accuracy/top1'\n"
            "pairs = [('resnet32x4', 'resnet8x4')]\n")
    suite = tmp_path / 'suites' / 'bad.py'
    suite.parent.mkdir()
    suite.write_text(base + "exclude = ['NoSuch']\n")
    with pytest.raises(KeyError, match=r"bad.py': variants/exclude name \['NoSuch'\]"):
        Suite(str(suite), str(tmp_path))
    suite.write_text(base + "methods = {'KD': 'kd'}\nvariants = {'AT': {'AT2': 'at'}}\n")
    with pytest.raises(KeyError, match=r"variants of \['AT'\], which this suite does not run"):
        Suite(str(suite), str(tmp_path))
    suite.write_text(base + "methods = ['kd']\n")
    with pytest.raises(ValueError, match="methods must be 'registered' or a dict"):
        Suite(str(suite), str(tmp_path))
