"""Peak-memory and timing primitives shared by the benchmarks (CPU: ``/proc``; CUDA: the
allocator's statistics)."""
from __future__ import annotations

import contextlib
import ctypes
import gc
import resource
import time
from typing import Callable, Dict, Optional, Tuple

import torch


def malloc_trim() -> None:
    """Give freed heap memory back to the OS (glibc), so RSS peaks start from live data."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL('libc.so.6').malloc_trim(0)


def status_kib(field: str) -> Optional[int]:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), ``None`` if absent."""
    with contextlib.suppress(OSError):
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    return None


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS (Linux >= 4.0)."""
    with contextlib.suppress(OSError):
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    return False


def available_bytes() -> Optional[int]:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (``None`` if unreadable)."""
    with contextlib.suppress(OSError):
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    return None


def peak_extra_bytes(step: Callable[[], object], cuda: bool) -> Tuple[Optional[int], str]:
    """Run ``step`` once; return the extra peak memory it needed over what was live before
    it, in bytes, and how it was measured.

    CUDA: ``max_memory_allocated`` minus ``memory_allocated`` before (tensors only, peak
    statistics reset). CPU: the peak resident set (``VmHWM``, reset through
    ``/proc/self/clear_refs``) minus the resident set before, after ``gc.collect()`` and
    ``malloc_trim(0)``: activations, gradients and allocator slack (``tracemalloc`` does
    not see torch's allocations). ``None`` where ``clear_refs`` cannot be written.
    """
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before,
                'cuda max_memory_allocated - memory_allocated before')
    malloc_trim()
    method = 'VmHWM (reset) - VmRSS before, after gc + malloc_trim'
    before = status_kib('VmRSS')
    if before is None or not reset_peak_rss():
        step()
        return None, method
    step()
    return 1024 * (status_kib('VmHWM') - before), method


def timed(step: Callable[[], object], cuda: bool) -> Tuple[float, float]:
    """Wall-clock and process CPU seconds of one call of ``step`` (CUDA synchronised)."""
    if cuda:
        torch.cuda.synchronize()
    start, cpu_start = time.perf_counter(), time.process_time()
    step()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu_start


def cpu_seconds_so_far() -> Tuple[float, float]:
    """User and system CPU seconds used so far by this process and by every child process
    of it that has ended and been waited for (loader workers, subprocesses):
    ``getrusage`` ``RUSAGE_SELF`` + ``RUSAGE_CHILDREN``, since the process started."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime


class CpuClock:
    """CPU time (:func:`cpu_seconds_so_far`) and wall time since it was made. Children
    count once they have ended and been waited for."""

    def __init__(self):
        self._user, self._sys = cpu_seconds_so_far()
        self._wall = time.perf_counter()

    def elapsed(self) -> Dict[str, float]:
        """``cpu_seconds`` (user + sys), ``user_seconds``, ``sys_seconds``,
        ``wall_seconds``."""
        user, system = cpu_seconds_so_far()
        user, system = user - self._user, system - self._sys
        return dict(cpu_seconds=user + system, user_seconds=user, sys_seconds=system,
                    wall_seconds=time.perf_counter() - self._wall)


def mib(value: Optional[int]) -> str:
    """``value`` bytes in whole MiB for a table ('-' when unknown)."""
    return '-' if value is None else f'{value / 2 ** 20:.0f}'


def describe_cpu(user: float, system: float) -> str:
    """``'CPU time 12.3 s (user 11.0 + sys 1.3)'``."""
    return f'CPU time {user + system:.1f} s (user {user:.1f} + sys {system:.1f})'
