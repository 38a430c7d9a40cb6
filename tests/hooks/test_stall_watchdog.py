"""StallWatchdog: the heartbeats of the ranks in a c10d store, the stall it detects, the rank
it names; StallWatchdogHook's config check; the process-group timeout key."""
import os

import pytest
import torch.distributed as dist
from mmengine.config import Config
from shared_setup import ROOT

from kdbench.hooks import StallWatchdogHook
from kdbench.hooks.stall_watchdog import StallWatchdog
from kdbench.utils.distributed import DEFAULT_TIMEOUT, prepare_distributed


class World:
    """One watchdog per rank on one shared store, and one clock moved by hand."""

    def __init__(self, world_size=2, limit=20.0):
        self.now = 100.0
        self.store = dist.HashStore()
        self.dogs = [StallWatchdog(self.store, rank, world_size, limit, on_stall=print,
                                   interval=2.0, clock=lambda: self.now)
                     for rank in range(world_size)]
        self.iteration = [0] * world_size

    def run(self, seconds, running=None, alive=None):
        """``seconds`` times: one second passes, each rank in ``running`` (default all)
        starts its next train iteration, each rank in ``alive`` (default all) publishes
        and checks. Returns ``{rank: report}`` of the first reports."""
        ranks = range(len(self.dogs))
        running = ranks if running is None else running
        alive = ranks if alive is None else alive
        reports = {}
        for _ in range(seconds):
            self.now += 1
            for rank in running:
                self.iteration[rank] += 1
                self.dogs[rank].beat(f'in train iteration {self.iteration[rank]}')
            for rank in alive:
                self.dogs[rank].publish()
            for rank in alive:
                report = self.dogs[rank].check()
                if report is not None:
                    reports.setdefault(rank, report)
        return reports


def test_progressing_ranks_are_not_a_stall():
    assert World(world_size=3).run(200) == {}


def test_a_frozen_rank_is_named_with_every_rank_s_last_iteration():
    world = World(limit=20.0)
    assert world.run(41) == {}
    assert world.run(1, running=[0], alive=[0]) == {}    # rank 1 stops (SIGSTOP)
    assert world.run(19, running=[], alive=[0]) == {}    # rank 0 waits in a collective
    reports = world.run(1, running=[], alive=[0])        # 21 s without news of rank 1
    headline, *rows = reports[0].splitlines()
    assert 'rank 1 stopped responding' in headline and 'rank 0 ' not in headline
    assert 'default_hooks.watchdog.stall_limit' in reports[0] and '--resume' in reports[0]
    assert any(r.startswith('  rank 0: in train iteration 42') and 'alive' in r for r in rows)
    assert any(r.startswith('  rank 1: in train iteration 41') and 'no heartbeat' in r
               for r in rows)


def test_no_progress_on_live_ranks_is_a_stall_after_the_limit_only():
    world = World(limit=20.0)
    world.run(5)
    assert world.run(20, running=[]) == {}               # alive, no progress for 20 s
    reports = world.run(1, running=[])
    assert set(reports) == {0, 1}
    assert 'rank 0, rank 1 made no progress' in reports[1].splitlines()[0]


def test_a_rank_that_never_starts_is_a_stall_and_a_finished_rank_is_not():
    world = World(world_size=3, limit=20.0)
    world.run(3, running=[0, 1], alive=[0, 1])
    world.dogs[1].stop()                                 # rank 1 finished its work
    reports = world.run(30, running=[0], alive=[0])
    headline = reports[0].splitlines()[0]
    assert 'rank 2 stopped responding' in headline and 'rank 1' not in headline
    assert '  rank 1: finished' in reports[0] and '  rank 2: not started' in reports[0]


def test_fast_beats_are_published_once_a_second_and_the_latest_by_the_thread():
    world = World()
    dog, key = world.dogs[0], StallWatchdog.key(0, 'progress')
    for i in range(1, 6):                                # 5 iterations within a second
        dog.beat(f'in train iteration {i}')
    assert world.store.get(key).decode() == '1 in train iteration 1'
    dog.publish()
    assert world.store.get(key).decode() == '5 in train iteration 5'


def test_the_thread_stops_the_process_through_on_stall_and_stop_joins_it():
    store = dist.HashStore()
    reports = []
    dog = StallWatchdog(store, 0, 2, stall_limit=0.3, on_stall=reports.append, interval=0.05)
    dog.start()
    dog._thread.join(timeout=30)                         # rank 1 never beats
    assert len(reports) == 1 and 'rank 1' in reports[0]
    dog.stop()
    assert store.get('kdbench_watchdog/0/progress').decode().endswith(' finished')


@pytest.mark.parametrize('limit', [-1, 'soon', True])
def test_a_bad_stall_limit_names_the_key(limit):
    with pytest.raises(ValueError, match=r'default_hooks\.watchdog\.stall_limit'):
        StallWatchdogHook(stall_limit=limit)


@pytest.mark.parametrize('limit', [0, None])
def test_the_hook_is_off_with_no_limit_or_one_process(limit):
    class Runner:
        iter = 0
    for hook in (StallWatchdogHook(stall_limit=limit), StallWatchdogHook()):
        hook.before_run(Runner())                        # no process group here
        assert hook.watchdog is None


@pytest.mark.parametrize('timeout', [0, -5, '30m', None])
def test_a_bad_process_group_timeout_names_the_key(timeout):
    cfg = Config(dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl',
                                                                     timeout=timeout))))
    with pytest.raises(ValueError, match=r'env_cfg\.dist_cfg\.timeout'):
        prepare_distributed(cfg)


def test_the_process_group_timeout_has_a_default_and_is_not_checked_without_launcher():
    cfg = Config(dict(launcher='none', env_cfg=dict(dist_cfg=dict(timeout='bad'))))
    prepare_distributed(cfg)                              # 1 process: no process group
    assert DEFAULT_TIMEOUT == 1800
    default = Config.fromfile(os.path.join(ROOT, 'configs', '_base_', 'default_runtime.py'))
    assert default.env_cfg.dist_cfg.timeout == DEFAULT_TIMEOUT
    assert default.default_hooks.watchdog == dict(type='StallWatchdogHook', stall_limit=1200)
