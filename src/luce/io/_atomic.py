"""Atomic file writes: a crash or a full disk never leaves a half-written file where the old one was.

The bytes go to a temporary file in the destination's own folder (so the final rename never crosses
a file system), are flushed and fsync'ed, and the temporary file is renamed over the destination with
``os.replace`` (atomic on POSIX and Windows). The folder is fsync'ed afterwards so the rename itself
survives a power cut. On any error the temporary file is removed and the destination is untouched.

An existing destination keeps its permission bits (a 0600 model stays 0600). The temporary file is
named ``.NAME.luce-tmp-PID-TOKEN``; if a writer is killed (kill -9, power cut) before its rename, that
file stays behind, and the next write to the same destination removes it once no process with that id
is running.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
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


_TMP_MARK = ".luce-tmp-"


def _tmp_name(name: str) -> str:
    return f".{name}{_TMP_MARK}{os.getpid()}-{secrets.token_hex(6)}"


def _writer_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap liveness check: leave the file (it is named for a human to remove)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user holds that id
        return True
    return True


def _remove_stale_temporaries(folder: Path, name: str) -> None:
    """Remove the temporary files that killed writers to ``folder/name`` left behind."""
    pattern = re.compile(re.escape(f".{name}{_TMP_MARK}") + r"(\d+)-[0-9a-f]{12}")
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or int(match.group(1)) == os.getpid() or _writer_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)


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
    _remove_stale_temporaries(folder, path.name)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) if path.is_file() else None
    except OSError:
        mode = None
    tmp = folder / _tmp_name(path.name)
    # O_EXCL: never follow or reuse an existing name; mode 0o666 lets the user's umask decide.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        if mode is not None:  # an overwrite keeps the destination's permissions
            os.chmod(fd if os.chmod in os.supports_fd else tmp, mode)
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
