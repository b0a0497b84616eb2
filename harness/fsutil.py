"""Filesystem helpers shared by every stage: atomic writes, fresh directories, hard-link copies."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as dt
import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "fresh_dir",
    "hardlink_copy",
    "naming",
    "swap_in_dir",
]


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old or the new file only."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise naming(e, target) from e
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):  # full or read-only disk: name the file meant, not the temp
            raise naming(e, target) from e
        raise
    _fsync_dir(target.parent)


def naming(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc`` (same errno and class) with ``path`` as its file name, for messages."""
    if exc.errno is None:  # not from the OS: nothing to rename
        return exc
    return type(exc)(exc.errno, exc.strerror, os.fspath(path))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    # Persist the rename itself; best effort (not supported everywhere).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def fresh_dir(
    root: str | os.PathLike[str],
    *,
    tag: str = "",
    run_id: str | None = None,
    now: dt.datetime | None = None,
) -> Path:
    """A new ``<root>/<UTC timestamp>-[<tag>-]<short id>`` made with ``os.mkdir``
    (atomic, fails if it exists: result directories are never reused).

    An explicit ``run_id`` that already exists raises FileExistsError; a random
    one is redrawn on the (unlikely) collision.
    """
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    for _ in range(8):
        prefix = f"{stamp}-{tag}-" if tag else f"{stamp}-"
        path = base / f"{prefix}{run_id or secrets.token_hex(3)}"
        try:
            os.mkdir(path)
        except FileExistsError:
            if run_id:
                raise
            continue
        return path
    raise FileExistsError(f"could not create a fresh results directory under {base}")


def hardlink_copy(src: Path, dest: Path) -> None:
    """``cp -al src dest``: a tree of hard links (cheap; files must be replaced, not edited)."""
    subprocess.run(["cp", "-al", str(src), str(dest)], check=True)


def swap_in_dir(new: Path, target: Path) -> None:
    """Make ``new`` be ``target``; an existing ``target`` is replaced, never half-way."""
    if target.exists() and _exchange(new, target):
        shutil.rmtree(new)  # now holds the previous run
        return
    if target.exists():  # no renameat2: move the old one aside first
        old = target.parent / f".{target.name}.tmp-old-{secrets.token_hex(3)}"
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old)
        return
    os.rename(new, target)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where it is not available."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    rc = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    if rc != 0:
        errno = ctypes.get_errno()
        if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: filesystem cannot
            return False
        raise OSError(errno, os.strerror(errno), str(b))
    return True
