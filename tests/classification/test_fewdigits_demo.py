"""The classification demo (configs/suites/demo_cls.py, 'fewdigits'): the teacher trains on
every digits training image, the students on a tenth; two seeds per student; the
Makefile's explain line names the checkpoints the suite writes."""
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


def test_two_seeds_per_student_and_the_four_methods(tmp_path):
    suite = Suite(SUITE, str(tmp_path))
    assert {r.role for r in suite.runs} == {'teacher', 'baseline', 'KD', 'AT', 'CAT-KD', 'TaT'}
    assert all(len(r.seeds) >= 2 for r in suite.runs if r.role != 'teacher')


def test_makefile_explains_the_checkpoints_the_demo_writes():
    suite = Suite(SUITE, os.path.join('work_dirs', 'demo', 'demo_cls'))
    with open(os.path.join(ROOT, 'Makefile')) as f:
        demo = f.read().split('\ndemo:')[1].split('\n\n')[0]
    paths = set(re.findall(r'work_dirs/\S+\.pth', demo))
    runs = {r.role: r for r in suite.runs}
    assert paths == {suite.final_checkpoint(runs['KD'], 0),
                     suite.final_checkpoint(runs['baseline'], 0)}
    assert os.path.relpath(runs['KD'].config, ROOT) in demo
    assert os.path.relpath(runs['baseline'].config, ROOT) in demo


def test_make_demo_trains_the_students_of_each_seed_as_one_cohort(tmp_path):
    with open(os.path.join(ROOT, 'Makefile')) as f:
        demo = f.read().split('\ndemo:')[1].split('\n\n')[0]
    assert re.search(r'tools/benchmark\.py configs/suites/demo\.py .*--cohort', demo)
    for name in ('demo_cls.py', 'demo_seg.py'):       # both suites of configs/suites/demo.py
        suite = Suite(os.path.join(ROOT, 'configs', 'suites', name), str(tmp_path / name))
        groups = [sorted((job.run.role, job.seed) for job in group.jobs)
                  for group in suite.cohort_groups()]
        roles = sorted(r.role for r in suite.runs if r.role != 'teacher')
        assert groups == [sorted((role, seed) for role in roles) for seed in (0, 1)], name
