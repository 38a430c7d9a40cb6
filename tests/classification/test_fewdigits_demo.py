"""The classification demo (configs/suites/demo_cls.py, 'fewdigits'): the teacher trains on
every digits training image, the students on a tenth; each method's grid holds its recipe;
tools/demo.sh (`make demo`) trains every student of a suite as one cohort and explains the
checkpoints the suite writes."""
import os
import re
from collections import Counter

from mmengine.registry import DefaultScope
from shared_setup import ROOT

import kdbench.distill  # noqa: F401  (registers the Distiller and methods)
import tasks.classification  # noqa: F401  (DigitsDataset, ClassSubsetDataset)
from kdbench.apis import load_config
from kdbench.benchmark import Suite
from kdbench.registry import DATASETS

SUITE = os.path.join(ROOT, 'configs', 'suites', 'demo_cls.py')


def _dataset(config: str, loader: str):
    with DefaultScope.overwrite_default_scope('kdbench'):
        return DATASETS.build(load_config(config)[loader].dataset)


def test_students_see_a_tenth_of_the_images_the_teacher_sees_all(tmp_path):
    suite = Suite(SUITE, str(tmp_path))
    teacher = next(r for r in suite.runs if r.role == 'teacher')
    students = [r for r in suite.runs if r.role != 'teacher']
    assert len(_dataset(teacher.config, 'train_dataloader')) == 1347
    for run in students:
        labels = [int(label) for label in _dataset(run.config, 'train_dataloader').labels]
        assert len(labels) == 130 and set(Counter(labels).values()) == {13}, run.config
    test_sets = {len(_dataset(r.config, 'test_dataloader')) for r in suite.runs}
    assert test_sets == {450}


def test_the_four_methods_each_with_a_grid_of_three_around_its_recipe(tmp_path):
    suite = Suite(SUITE, str(tmp_path))
    assert {r.role for r in suite.runs} == {'teacher', 'baseline', 'KD', 'AT', 'CAT-KD', 'TaT'}
    assert [run.role for run, _ in suite.grids] == ['KD', 'AT', 'CAT-KD', 'TaT']
    for run, trials in suite.grids:
        assert len(trials) == 3 and trials[1] is run          # the recipe, in the middle
        assert run.kind == 'run' and all(t.kind == 'trial' for t in trials if t is not run)


def _demo_script() -> str:
    """tools/demo.sh (what `make demo` runs), its work dir variables filled in."""
    with open(os.path.join(ROOT, 'Makefile')) as f:
        assert 'bash tools/demo.sh' in f.read().split('\ndemo:')[1].split('\n\n')[0]
    with open(os.path.join(ROOT, 'tools', 'demo.sh')) as f:
        text = f.read()
    return text.replace('$CLS', '$W/demo_cls').replace('$W', 'work_dirs/demo').replace('"', '')


def test_make_demo_explains_the_checkpoints_the_demo_writes():
    suite = Suite(SUITE, os.path.join('work_dirs', 'demo', 'demo_cls'))
    demo = _demo_script()
    paths = set(re.findall(r'work_dirs/\S+\.pth', demo))
    runs = {r.role: r for r in suite.runs if r.kind == 'run'}
    assert paths == {suite.final_checkpoint(runs['KD'], 0),
                     suite.final_checkpoint(runs['baseline'], 0)}
    assert os.path.relpath(runs['KD'].config, ROOT) in demo
    assert os.path.relpath(runs['baseline'].config, ROOT) in demo


def test_make_demo_trains_every_student_of_a_suite_as_one_cohort(tmp_path):
    demo = _demo_script()
    for name in ('demo_cls', 'demo_seg'):
        assert re.search(rf'tools/benchmark\.py configs/suites/{name}\.py --work-dir '
                         rf'work_dirs/demo/{name} --cohort', demo), name
        suite = Suite(os.path.join(ROOT, 'configs', 'suites', f'{name}.py'),
                      str(tmp_path / name))
        groups = [sorted(job.run.name for job in group.jobs) for group in suite.cohort_groups()]
        assert groups == [sorted(r.name for r in suite.runs if r.role != 'teacher')], name
        assert len(groups[0]) == 13
