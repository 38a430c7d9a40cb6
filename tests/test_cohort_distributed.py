"""Cohorts under several processes (docs/cohorts.md, "Several processes"): a 2-process
gloo cohort started with tools/dist_run.sh ends every member bitwise equal to its own
2-process run (one with gradient accumulation through its DDP's ``no_sync``), a member
whose loss is NaN on one rank only fails on both while the others finish, a failure
raised on one rank only is decided alike on every rank, and wrappers that would sync the
teacher or break ``no_sync`` are refused."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.config import Config
from shared_setup import ROOT

from kdbench.apis import load_config
from kdbench.apis.cohort_check import check_cohort
from kdbench.apis.cohort_member import CohortMember, FailedOnAnotherRank
from kdbench.apis.cohort_runner import CohortError
from kdbench.benchmark.compare import CHECKPOINT_KEYS, differences
from kdbench.testing import write_random_teacher
from kdbench.utils.checkpoint import load_local_checkpoint

needs_bash = pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash')
DEMO = os.path.join(ROOT, 'configs', 'demo')
KD = os.path.join(DEMO, 'kd_resnet20_resnet8_fewdigits.py')
CLS_TEACHER = dict(type='ImageClassifier', net=dict(type='resnet20', num_classes=10))
# 60 training images: 4 batches of 8 per process and epoch, 16 validation images; one
# loader worker per process (crops from per-(seed, epoch, rank, worker) streams).
SMALL = """
train_cfg = dict(max_epochs=1, val_interval=1)
train_dataloader = dict(batch_size=8, num_workers=1, dataset=dict(fraction=0.05))
val_dataloader = dict(dataset=dict(_delete_=True, type='ClassSubsetDataset', num_classes=10,
                                   fraction=0.05,
                                   dataset=dict(type='DigitsDataset', split='test', size=16)))
"""


def _config(folder, name, base, lines=''):
    path = os.path.join(folder, f'{name}.py')
    with open(path, 'w') as f:
        f.write(f'_base_ = [{base!r}]\n{SMALL}{lines}')
    return path


def _launch(root, port, *args):
    """tools/dist_run.sh 2 ARGS --seed 3 --deterministic; returns (exit status, output)."""
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1', PORT=str(port), PYTHON=sys.executable,
               KDBENCH_CACHE_DIR=os.path.join(root, 'cache'))
    command = ['bash', os.path.join(ROOT, 'tools', 'dist_run.sh'), '2', *map(str, args),
               '--seed', '3', '--deterministic']
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope='module')
def two_process_runs(tmp_path_factory):
    """Baseline, a NaN-on-rank-1 KD member and FitNet (trainable connector, gradient
    accumulation over 2 iterations) as one 2-process cohort; baseline and FitNet alone
    with tools/dist_train.sh's launcher."""
    root = str(tmp_path_factory.mktemp('dist_cohort'))
    teacher = write_random_teacher(CLS_TEACHER, os.path.join(root, 'teacher.pth'), seed=1)
    use = f'model = dict(teacher_ckpt={teacher!r})\n'
    paths = [_config(root, 'baseline', os.path.join(DEMO, 'resnet8_fewdigits.py')),
             _config(root, 'nan_on_rank1', KD, use + "import os\nmodel.update(methods=dict(kd="
                     "dict(type='KD', temperature=4.0, loss_weight=float('nan') if "
                     "os.environ.get('RANK') == '1' else 1.0)))\n"),
             _config(root, 'fitnet', KD, use + "model.update(methods=dict(kd=None, fitnet="
                     "dict(type='FitNet', loss_weight=100.0)))\n"
                     'optim_wrapper = dict(accumulative_counts=2)\n')]
    cohort = _launch(root, 29651, 'train_cohort.py', *paths, '--work-dir-root',
                     os.path.join(root, 'cohort'))
    for port, path in zip((29652, 29653), (paths[0], paths[2])):
        name = os.path.splitext(os.path.basename(path))[0]
        status, out = _launch(root, port, 'train.py', path, '--work-dir',
                              os.path.join(root, 'alone', name))
        assert status == 0, out[-4000:]
    return dict(root=root, status=cohort[0], out=cohort[1])


@needs_bash
@pytest.mark.slow
def test_two_process_cohort_members_equal_their_two_process_runs(two_process_runs):
    root = two_process_runs['root']
    for name in ('baseline', 'fitnet'):
        alone = load_local_checkpoint(os.path.join(root, 'alone', name, 'epoch_1.pth'))
        cohort = load_local_checkpoint(os.path.join(root, 'cohort', name, 'epoch_1.pth'))
        assert not differences(*[{key: c[key] for key in CHECKPOINT_KEYS}
                                 for c in (alone, cohort)], name)
        assert not any(k.startswith('teacher.') for k in cohort['state_dict'])
    fitnet = load_local_checkpoint(os.path.join(root, 'cohort', 'fitnet', 'epoch_1.pth'))
    assert any(k.startswith('methods.fitnet.') for k in fitnet['state_dict'])


@needs_bash
@pytest.mark.slow
def test_a_member_nan_on_one_rank_fails_on_both_while_the_others_finish(two_process_runs):
    status, out = two_process_runs['status'], two_process_runs['out']
    assert status != 0                                   # a member failed: exit status 1
    assert out.count('Effective batch size 16 = 8 per process x 2 processes') == 3
    assert 'baseline: trained' in out and 'fitnet: trained' in out
    assert 'nan_on_rank1: FAILED: NonFiniteLossError' in out
    assert 'finite here, non-finite on another process' in out       # rank 0's decision
    assert not os.path.exists(os.path.join(two_process_runs['root'], 'cohort',
                                           'nan_on_rank1', 'epoch_1.pth'))
    assert 'outlived destroy_process_group' not in out


def _agree_worker(rank: int, store: str, out_dir: str) -> None:
    """Rank ``rank`` of 2: a member raising on rank 1 only, then a member that works,
    each stepped twice; then a collective shows the ranks are still paired."""
    torch_dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank,
                                  world_size=2)
    members = [CohortMember(name, Config()) for name in ('fails_on_rank1', 'works')]

    def step(name):
        if name == 'fails_on_rank1' and rank == 1:
            raise ValueError('only on rank 1')
        return 'done'

    results = [[member.run(step, member.name) for member in members] for _ in range(2)]
    total = torch.tensor(rank + 1)
    torch_dist.all_reduce(total)
    torch_dist.destroy_process_group()
    with open(os.path.join(out_dir, f'{rank}.json'), 'w') as f:
        json.dump(dict(results=results, total=int(total),
                       errors=[[type(m.error).__name__, str(m.error)] if m.error else None
                               for m in members]), f)


def test_a_failure_on_one_rank_is_decided_alike_on_every_rank(tmp_path):
    mp.spawn(_agree_worker, args=(str(tmp_path / 'store'), str(tmp_path)), nprocs=2)
    ranks = [json.loads((tmp_path / f'{rank}.json').read_text()) for rank in (0, 1)]
    for seen in ranks:
        assert seen['results'] == [[None, 'done'], [None, 'done']]
        assert seen['total'] == 3 and seen['errors'][1] is None
    assert ranks[1]['errors'][0] == ['ValueError', 'only on rank 1']
    assert ranks[0]['errors'][0] == [FailedOnAnotherRank.__name__, 'fails_on_rank1 failed '
                                     'on rank 1: ValueError: only on rank 1']


@pytest.mark.parametrize('wrapper, reason', [
    (dict(type='MMSeparateDistributedDataParallel'), 'no_sync'),
    (dict(type='MMDistributedDataParallel'), 'teacher'),
    (None, "not set .mmengine's default")])
def test_distributed_members_need_kd_ddp(tmp_path, wrapper, reason):
    cfgs = [load_config(KD, {}, str(tmp_path / 'kd'), launcher='pytorch')]
    check_cohort(cfgs)                         # the default: kdbench.KDDistributedDataParallel
    cfgs[0].model_wrapper_cfg = wrapper
    with pytest.raises(CohortError, match=f'kd_resnet20.*model_wrapper_cfg.type .*{reason}'):
        check_cohort(cfgs)
