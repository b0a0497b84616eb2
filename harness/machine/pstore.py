"""Panic evidence kept by the machine itself: pstore (ramoops) read back by its own kernel.

The kernel under test writes its oops and panic reports into a RAM region
(ramoops) that survives the reboot; the machine's own kernel finds them in
/sys/fs/pstore. For that both kernels must place the region identically and
the own kernel must not use it: whatever the own command line says about it
(``ramoops.*``, and ``memmap=``/``mem=``, which keep a kernel off the region)
is given to the kernel under test too. A region described by the device tree
needs nothing: kexec hands the kernel under test the same tree.

Entries present before a boot are the owner's, not ours: only entries that
are new or changed after the boot are read, stored and removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PSTORE_DIR = "/sys/fs/pstore"
# Arguments of the own command line that describe or protect the region.
_REGION_ARG = re.compile(r"^(?:ramoops\.[a-z_]+|memmap|mem)=")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # pstore's own names (dmesg-ramoops-0)
# pstore's header line of a kmsg dump: "Panic#1 Part1"
_HEADER = re.compile(r"^(?P<why>[A-Za-z]+)#(?P<count>\d+) Part(?P<part>\d+)\s*$")
# Which dump says most about a crash: the panic, then an oops, then the rest.
_PREFERENCE = {"Panic": 0, "Oops": 1}

# Lists pstore's entries with their sha256 (constant script; the directory is
# passed as an argument). Exit 3: no pstore filesystem mounted there.
LIST_SCRIPT = (
    'grep -qs " $1 pstore " /proc/mounts || exit 3; '
    'cd "$1" || exit 3; '
    'for f in *; do [ -f "$f" ] && sha256sum -- "$f"; done; exit 0'
)


def list_command() -> list[str]:
    return ["sh", "-c", LIST_SCRIPT, "kbulk-pstore", PSTORE_DIR]


def region_args(own_cmdline: str) -> list[str]:
    """The own command line's arguments that place the ramoops region and keep the
    kernel off it, in their order, to be given to the kernel under test as well."""
    return [arg for arg in own_cmdline.split() if _REGION_ARG.match(arg)]


def has_ramoops_region(args: list[str]) -> bool:
    return any(a.startswith("ramoops.mem_address=") for a in args) and any(
        a.startswith("ramoops.mem_size=") for a in args
    )


def parse_listing(text: str) -> dict[str, str]:
    """``sha256sum`` lines -> {entry name: sha256}; names pstore would not make are ignored."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        digest, _, name = line.partition("  ")
        if re.fullmatch(r"[0-9a-f]{64}", digest) and _NAME.match(name):
            entries[name] = digest
    return entries


def new_entries(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Entries that appeared or changed during the boot (ramoops reuses slot names)."""
    return sorted(name for name, digest in after.items() if before.get(name) != digest)


@dataclass(frozen=True)
class Dump:
    """One kmsg dump (all its parts) from pstore's dmesg entries."""

    why: str  # Panic, Oops, ...
    count: int
    files: list[str]  # oldest part first
    lines: list[str]


def dumps(records: Mapping[str, str]) -> list[Dump]:
    """The kmsg dumps in dmesg-* records (name -> text), most telling first.

    A dump too large for one record is split into parts, Part1 being the
    newest text; the parts are joined oldest first, as the console had them,
    each with its header line (so a one-part dump's line numbers are its file's).
    """
    parts: dict[tuple[str, int], list[tuple[int, str, list[str]]]] = {}
    for name, text in records.items():
        if not name.startswith("dmesg-"):
            continue
        lines = text.splitlines()
        m = _HEADER.match(lines[0]) if lines else None
        if m is None:
            continue
        key = (m["why"], int(m["count"]))
        parts.setdefault(key, []).append((int(m["part"]), name, lines))
    found = []
    for (why, count), pieces in parts.items():
        pieces.sort(key=lambda p: -p[0])
        found.append(
            Dump(why, count, [p[1] for p in pieces], [line for p in pieces for line in p[2]])
        )
    found.sort(key=lambda d: (_PREFERENCE.get(d.why, len(_PREFERENCE)), -d.count))
    return found
