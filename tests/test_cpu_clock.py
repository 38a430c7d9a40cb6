"""CpuClock: the CPU time of this process and of the child processes it waited for."""
import subprocess
import sys

import pytest

from kdbench.benchmark.measure import CpuClock, describe_cpu

# A child that spends CPU time and prints how much (user + sys) it used.
BUSY_CHILD = ('import time\nstart = time.process_time()\n'
              'while time.process_time() - start < 0.3:\n    sum(range(1000))\n'
              'print(time.process_time())')


def test_cpu_clock_counts_the_children_it_waited_for():
    clock = CpuClock()
    child_cpu = float(subprocess.run([sys.executable, '-c', BUSY_CHILD], capture_output=True,
                                     text=True, check=True).stdout)
    times = clock.elapsed()
    assert child_cpu >= 0.3
    assert times['cpu_seconds'] >= child_cpu            # the child's time is in it
    assert times['cpu_seconds'] == pytest.approx(times['user_seconds'] + times['sys_seconds'])
    assert times['wall_seconds'] > 0


def test_cpu_time_is_described_with_its_parts():
    assert describe_cpu(11.04, 1.3) == 'CPU time 12.3 s (user 11.0 + sys 1.3)'
