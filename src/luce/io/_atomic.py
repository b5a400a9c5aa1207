"""Atomic file writes: a crash or a full disk never leaves a half-written file where the old one was.

The bytes go to a temporary file in the destination's own folder (so the final rename never crosses
a file system), are flushed and fsync'ed, and the temporary file is renamed over the destination with
``os.replace`` (atomic on POSIX and Windows). The folder is fsync'ed afterwards so the rename itself
survives a power cut. On any error the temporary file is removed and the destination is untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

__all__ = ["atomic_write_bytes"]


def _fsync_folder(folder: Path) -> None:
    # Directories cannot be opened for fsync on Windows; there the rename is already durable enough.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    Parameters
    ----------
    path : str or os.PathLike
        The destination; its folder must exist. An existing file is replaced only once the new
        content is completely on disk.
    data : bytes
        The whole content.

    Returns
    -------
    pathlib.Path
    """
    path = Path(os.fspath(path))
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {folder} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder")
    tmp = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # O_EXCL: never follow or reuse an existing name; mode 0o666 lets the user's umask decide.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)
    return path
