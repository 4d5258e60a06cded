"""Owner-only files (0600) and folders (0700) for everything that holds key material.

Device configs, filesystem images and merged flash images hold a tracker's key; fleet.toml may
hold the depot WiFi and MQTT passwords; the fleet folder holds the fleet secret. Each is written
to a temporary file created 0600 (whatever the umask) and renamed into place, so no reader ever
sees a half-written or world-readable copy.
"""

from __future__ import annotations

import os
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make it owner-only."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write `data` to `path`, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an older .tmp keeps its mode through O_CREAT: set it anyway
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            fh.write(data)
    finally:
        if fd >= 0:
            os.close(fd)
    os.replace(tmp, path)
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode())
