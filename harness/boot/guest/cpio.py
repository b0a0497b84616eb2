"""A minimal, deterministic writer for the "newc" cpio format the kernel unpacks.

Writing it ourselves avoids a dependency on the host's cpio/gen_init_cpio and
lets us create device nodes (/dev/console) without root privileges.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class CpioEntry:
    path: str  # inside the archive, without leading "/"
    mode: int  # full st_mode, type bits included
    data: bytes = b""
    rdev_major: int = 0
    rdev_minor: int = 0


def directory(path: str, perm: int = 0o755) -> CpioEntry:
    return CpioEntry(path.strip("/"), stat.S_IFDIR | perm)


def regular(path: str, data: bytes, perm: int = 0o644) -> CpioEntry:
    return CpioEntry(path.strip("/"), stat.S_IFREG | perm, data)


def char_device(path: str, major: int, minor: int, perm: int = 0o600) -> CpioEntry:
    return CpioEntry(path.strip("/"), stat.S_IFCHR | perm, b"", major, minor)


def _pad4(n: int) -> bytes:
    return b"\0" * ((4 - n % 4) % 4)


def _header(ino: int, entry: CpioEntry, name: bytes) -> bytes:
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = [
        ino,
        entry.mode,
        0,  # uid
        0,  # gid
        nlink,
        0,  # mtime: fixed for reproducible images
        len(entry.data),
        0,  # dev major
        0,  # dev minor
        entry.rdev_major,
        entry.rdev_minor,
        len(name),
        0,  # checksum (unused by newc)
    ]
    return b"070701" + b"".join(f"{f:08x}".encode() for f in fields)


def build_cpio(entries: list[CpioEntry]) -> bytes:
    """Serialise entries (parents must precede children) into a newc archive."""
    out = bytearray()
    for ino, entry in enumerate([*entries, CpioEntry(_TRAILER, 0)], start=1):
        name = entry.path.encode() + b"\0"
        header = _header(ino if entry.path != _TRAILER else 0, entry, name)
        out += header + name
        out += _pad4(len(header) + len(name))
        out += entry.data + _pad4(len(entry.data))
    # The kernel reads the archive in 512-byte blocks; pad like cpio(1) does.
    out += b"\0" * ((512 - len(out) % 512) % 512)
    return bytes(out)


def write_cpio(path: Path, entries: list[CpioEntry]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(build_cpio(entries))
    tmp.replace(path)
