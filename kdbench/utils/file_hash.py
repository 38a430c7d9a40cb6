"""The SHA-256 of a file, read in chunks (for cache keys and downloaded weights' names)."""
from __future__ import annotations

import hashlib


def file_sha256(path: str, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()
