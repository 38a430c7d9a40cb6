"""Set-up shared by test files (importable from every test folder: pytest puts tests/ on
``sys.path`` for ``tests/conftest.py``)."""
import contextlib
import os
from typing import Iterator, Optional

from mmengine.config import Config

#: The repository root (configs/, tools/ and tests/ are under it).
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def shrink_to_iterations(cfg: Config, max_iters: int = 2,
                         checkpoint_interval: Optional[int] = None) -> Config:
    """Make ``cfg`` train ``max_iters`` iterations then validate once: an iteration-based
    loop without parameter schedulers, a checkpoint every ``checkpoint_interval``
    iterations (default: after the last) and iteration-based logging. Returns ``cfg``."""
    cfg.train_cfg = dict(by_epoch=False, max_iters=max_iters, val_interval=max_iters)
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', by_epoch=False,
                                        interval=checkpoint_interval or max_iters)
    cfg.log_processor = dict(by_epoch=False)
    return cfg


def write_digits_suite_configs(root) -> None:
    """Write ``root/configs``: the demo digits pair (teacher resnet20, baseline resnet8, KD)
    and ``broken_resnet20_resnet8_digits.py``, a KD config naming a method that does not
    exist, for suites whose runs must include a failure."""
    demo = os.path.join(ROOT, 'configs', 'demo')
    configs = os.path.join(str(root), 'configs')
    os.makedirs(configs)
    for name in ('resnet20_digits.py', 'resnet8_digits.py', 'kd_resnet20_resnet8_digits.py'):
        with open(os.path.join(configs, name), 'w') as f:
            f.write(f"_base_ = ['{os.path.join(demo, name)}']\n")
    with open(os.path.join(configs, 'broken_resnet20_resnet8_digits.py'), 'w') as f:
        f.write(f"_base_ = ['{os.path.join(demo, 'kd_resnet20_resnet8_digits.py')}']\n"
                "model = dict(methods=dict(kd=dict(type='NoSuchMethod')))\n")


def write_fewdigits_cohort_suite(root) -> None:
    """Write the few-digits suites of the ``--cohort`` tests under ``root`` (the students
    load with one worker, so they can share batches): ``cohort.py`` (a released random
    teacher ``teacher.pth``, baseline, KD and a method broken on purpose; seed 0) and
    ``apart.py`` (a teacher run, baseline, KD and KD on other batches (batch size 16);
    seeds 0 and 1), their configs in ``root/configs``."""
    from kdbench.testing import write_random_teacher
    demo = os.path.join(ROOT, 'configs', 'demo')
    configs = os.path.join(str(root), 'configs')
    os.makedirs(configs)
    kd = os.path.join(demo, 'kd_resnet20_resnet8_fewdigits.py')
    lines = {name: f"_base_ = ['{os.path.join(demo, name)}']\n" for name in (
        'resnet20_fewdigits.py', 'resnet8_fewdigits.py', 'kd_resnet20_resnet8_fewdigits.py')}
    lines['broken_resnet20_resnet8_fewdigits.py'] = (
        f"_base_ = ['{kd}']\nmodel = dict(methods=dict(kd=dict(type='NoSuchMethod')))\n")
    lines['kd16_resnet20_resnet8_fewdigits.py'] = (
        f"_base_ = ['{kd}']\ntrain_dataloader = dict(batch_size=16)\n")
    for name, text in lines.items():
        with open(os.path.join(configs, name), 'w') as f:
            f.write(text)
    teacher = write_random_teacher(dict(type='ImageClassifier', net=dict(
        type='resnet20', num_classes=10)), os.path.join(str(root), 'teacher.pth'), seed=1)
    spec = ("dataset = 'fewdigits'\nconfig_dir = 'configs'\nmetric = 'accuracy/top1'\n"
            "pairs = [('resnet20', 'resnet8')]\n")
    with open(os.path.join(str(root), 'cohort.py'), 'w') as f:
        f.write(spec + "seeds = [0]\nmethods = {'KD': 'kd', 'Broken': 'broken'}\n"
                f"released_teachers = dict(path={teacher!r})\n")
    with open(os.path.join(str(root), 'apart.py'), 'w') as f:
        f.write(spec + "seeds = [0, 1]\nmethods = {'KD': 'kd', 'KD16': 'kd16'}\n")


@contextlib.contextmanager
def registered_method(cls: type) -> Iterator[type]:
    """Register a test-only distillation method for the duration of the block, so that the
    method table the other tests read holds only kdbench's own methods."""
    from kdbench.registry import DISTILL_METHODS
    with DISTILL_METHODS.temporarily(cls):
        yield cls
