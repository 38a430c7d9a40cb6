"""Atomic local writes: a kill during one of kdbench's checkpoint saves never leaves a
half-written ``epoch_N.pth``.

Only kdbench's own writes use them (:class:`~kdbench.apis.runner.KDRunner` passes
:func:`atomic_backend_args` to mmengine's checkpoint saving); mmengine's local file backend
stays what it is for everything else in the process."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend


def write_atomically(data: Union[bytes, str], filepath: Union[str, Path],
                     encoding: str = 'utf-8') -> None:
    """Write ``data`` to a temporary file beside ``filepath``, flush it to disk, then rename
    it over ``filepath`` (``os.replace`` is atomic on POSIX and Windows): readers see the
    old file or the complete new one, never a part."""
    filepath = os.fspath(filepath)
    os.makedirs(os.path.dirname(filepath) or '.', exist_ok=True)
    tmp = f'{filepath}.tmp-{os.getpid()}'
    try:
        with open(tmp, 'wb') as f:
            f.write(data.encode(encoding) if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local backend whose ``put``/``put_text`` (checkpoints, ``last_checkpoint``,
    dumped configs) write atomically."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        write_atomically(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        write_atomically(obj, filepath, encoding)


#: The name :class:`AtomicLocalBackend` is registered under (never as the default for
#: local paths).
ATOMIC_BACKEND = 'kdbench_atomic_local'


def atomic_backend_args() -> dict:
    """``backend_args`` that make mmengine's ``save_checkpoint`` write through
    :class:`AtomicLocalBackend` (registered under its own name on first use)."""
    from mmengine.fileio.backends.registry_utils import backends
    if ATOMIC_BACKEND not in backends:
        register_backend(ATOMIC_BACKEND, AtomicLocalBackend)
    return dict(backend=ATOMIC_BACKEND)
