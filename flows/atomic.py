"""Staging folders and files for atomic writes, with the permissions an ordinary write would get.

Every stage writes into a temporary folder beside its output and swaps it in when complete. `tempfile` creates
those with mode 0700 (folders) and 0600 (files), whatever the umask, so swapped-in outputs were private to their
owner: a shared project, a DVC cache or a web server reading reports/ could not read them. These helpers create
the same temporary paths and give them the mode ``0o777 & ~umask`` (folders) / ``0o666 & ~umask`` (files).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process umask, read without changing it where /proc tells it (os.umask sets it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def staging_dir(target: Path) -> Path:
    """A new empty folder beside `target` (hidden, named after it), mode 0o777 & ~umask."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(0o777 & ~current_umask())
    return staging


def staging_file(target: Path) -> tuple[int, Path]:
    """An open descriptor and path of a new file beside `target` (hidden, ``.tmp``), mode 0o666 & ~umask."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.chmod(fd, 0o666 & ~current_umask())
    return fd, Path(name)


def ordinary_modes(folder: Path) -> None:
    """Give `folder` and everything in it the modes of ordinary writes (libraries such as safetensors create
    their files 0600)."""
    mask = current_umask()
    folder.chmod(0o777 & ~mask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
