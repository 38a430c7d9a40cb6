"""A distributed run's process group dies in finish_distributed, not at interpreter exit:
no gloo thread survives it even when a DDP wrapper sits in a reference cycle (as in
mmengine's runner), and 20 two-process launches end without the teardown abort."""
import gc
import os
import shutil
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from shared_setup import ROOT

from kdbench.utils.distributed import (KDDistributedDataParallel, finish_distributed,
                                       gloo_threads)

TEARDOWN_ABORT = 'terminate called without an active exception'
needs_proc = pytest.mark.skipif(not os.path.isdir('/proc/self/task'), reason='needs /proc')


@needs_proc
def test_no_gloo_thread_survives_finish_distributed_with_a_wrapper_in_a_cycle(tmp_path):
    store = dist.FileStore(str(tmp_path / 'store'), 1)
    collecting = gc.isenabled()
    gc.disable()                 # only finish_distributed may collect the cycle below
    try:
        dist.init_process_group('gloo', store=store, rank=0, world_size=1)
        model = KDDistributedDataParallel(module=torch.nn.Linear(4, 2),
                                          broadcast_buffers=False)
        model(torch.randn(3, 4)).sum().backward()
        runner_like = {'model': model}
        runner_like['self'] = runner_like
        del model, runner_like
        assert gloo_threads()                            # the group's threads run
        finish_distributed()
        assert not dist.is_initialized()
        assert gloo_threads() == []
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
        if collecting:
            gc.enable()


@pytest.mark.slow
@needs_proc
@pytest.mark.skipif(shutil.which('bash') is None, reason='needs bash')
def test_twenty_two_process_launches_end_without_a_teardown_abort(tmp_path):
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1',
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    config = os.path.join(ROOT, 'configs', 'demo', 'resnet8_digits.py')
    for launch in range(20):
        command = ['bash', os.path.join(ROOT, 'tools', 'dist_train.sh'), config, '2',
                   '--work-dir', str(tmp_path / str(launch)), '--cfg-options',
                   'train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
        done = subprocess.run(command, cwd=ROOT, env=dict(env, PORT=str(29641 + launch % 4)),
                              capture_output=True, text=True, timeout=600)
        out = done.stdout + done.stderr
        assert done.returncode == 0 and TEARDOWN_ABORT not in out, (launch, out[-3000:])
        assert 'outlived destroy_process_group' not in out, (launch, out[-3000:])
