"""A frozen rank ends a distributed run: rank 1 of a 2-process gloo run is stopped with
SIGSTOP while training; the StallWatchdogHook of rank 0 names it and the iterations both
ranks reached, and the launcher exits non-zero instead of hanging."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from shared_setup import ROOT

CONFIG = os.path.join(ROOT, 'configs', 'demo', 'resnet20_digits.py')
STALL_LIMIT = 20          # seconds; the test's bound on the whole stop is far larger
BOUND = 300               # seconds from SIGSTOP to the launcher's exit (no speed check)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which('bash') is None or not os.path.isdir('/proc'),
                                 reason='needs bash and /proc')]


def children(pid: int):
    """Ids of the processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as f:
                    stat = f.read()
            except OSError:
                continue
            if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def rank_of(pid: int):
    """The RANK in a process's environment, or None."""
    try:
        with open(f'/proc/{pid}/environ', 'rb') as f:
            env = dict(v.split(b'=', 1) for v in f.read().split(b'\0') if b'=' in v)
    except OSError:
        return None
    return int(env[b'RANK']) if b'RANK' in env else None


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f'timed out waiting for {what}')


def trained_iterations(log_path) -> int:
    """The largest training iteration rank 0 logged so far (``Epoch(train) [e][i/n]``)."""
    with open(log_path) as f:
        text = f.read()
    done = [int(i) for i in re.findall(r'Epoch\(train\)\s*\[\d+\]\s*\[\s*(\d+)/', text)]
    return max(done, default=0)


def test_a_stopped_rank_ends_the_run_with_a_message_naming_it(tmp_path):
    log_path = tmp_path / 'out.txt'
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE='1', PORT='29631',
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    command = ['bash', os.path.join(ROOT, 'tools', 'dist_train.sh'), CONFIG, '2',
               '--work-dir', str(tmp_path / 'work'), '--cfg-options',
               f'default_hooks.watchdog.stall_limit={STALL_LIMIT}',
               'default_hooks.logger.interval=1', 'train_cfg.max_epochs=1000']
    with open(log_path, 'w') as log:
        launcher = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
    stopped = None
    try:
        wait_for(lambda: trained_iterations(log_path) >= 3 or launcher.poll() is not None,
                 600, 'the first iterations')
        assert launcher.poll() is None, log_path.read_text()[-3000:]
        time.sleep(3)              # rank 1 publishes its progress at most once a second
        workers = wait_for(lambda: {rank_of(p): p for p in children(launcher.pid)}, 30,
                           'the workers')
        stopped = workers[1]
        os.kill(stopped, signal.SIGSTOP)
        returncode = launcher.wait(timeout=BOUND)
    finally:
        if stopped is not None:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(stopped, sig)
                except ProcessLookupError:
                    pass
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    out = log_path.read_text()
    assert returncode != 0, out[-3000:]
    assert re.search(r'Distributed run stalled: rank 1 stopped responding', out), out[-3000:]
    assert re.search(r'rank 0: (in|finished) train iteration \d+ ', out), out[-3000:]
    assert re.search(r'rank 1: (in|finished) train iteration \d+ ', out), out[-3000:]
