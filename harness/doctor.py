"""`kbulk doctor`: what is missing on this host, with the exact install line."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.boot.accel import Verdict
from harness.boot.qemu import kvm_device_usable, qemu_version
from harness.kernel.arch import ARCHES, HOST_PACKAGES


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    package: str | None  # Debian package that provides it
    detail: str = ""


# (what, how to detect, Debian package)
_COMMON_TOOLS = [
    ("make", "make", "make"),
    ("gcc", "gcc", "gcc"),
    ("flex", "flex", "flex"),
    ("bison", "bison", "bison"),
    ("bc", "bc", "bc"),
    ("perl", "perl", "perl"),
    ("patch", "patch", "patch"),
    ("ccache (optional, speeds up rebuilds)", "ccache", "ccache"),
    ("pahole", "pahole", "dwarves"),
    ("apt-get (Debian kernel sources)", "apt-get", "apt"),
    ("dpkg-deb", "dpkg-deb", "dpkg"),
    ("xz", "xz", "xz-utils"),
    ("addr2line (stack trace decoding)", "addr2line", "binutils"),
]
_COMMON_HEADERS = [
    ("libelf headers", "/usr/include/libelf.h", "libelf-dev"),
    ("OpenSSL headers", "/usr/include/openssl/ssl.h", "libssl-dev"),
]


def host_checks(arches: list[str]) -> list[Check]:
    checks = [Check(what, shutil.which(cmd) is not None, pkg) for what, cmd, pkg in _COMMON_TOOLS]
    checks += [Check(what, Path(path).exists(), pkg) for what, path, pkg in _COMMON_HEADERS]
    for name in arches:
        arch = ARCHES[name]
        qemu = shutil.which(arch.qemu_binary)
        pkgs = HOST_PACKAGES[name]
        checks.append(
            Check(f"{arch.qemu_binary}", qemu is not None, pkgs[0], qemu_version(arch.qemu_binary))
        )
        prefix = arch.cross_prefix_for_host()
        if prefix:
            checks.append(Check(f"{prefix}gcc", shutil.which(f"{prefix}gcc") is not None, pkgs[1]))
            libc = Path(f"/usr/{prefix.rstrip('-')}/lib/libc.a")
            checks.append(Check(f"static libc for {name} guest init", libc.exists(), pkgs[2]))
        else:
            checks.append(
                Check(
                    f"static libc for {name} guest init",
                    Path("/usr/lib/x86_64-linux-gnu/libc.a").exists()
                    or Path("/usr/lib/aarch64-linux-gnu/libc.a").exists(),
                    "libc6-dev",
                )
            )
    return checks


def install_line(checks: list[Check]) -> str | None:
    missing = sorted({c.package for c in checks if not c.ok and c.package})
    if not missing:
        return None
    return "sudo apt-get install -y " + " ".join(missing)


def kvm_summary(cache_verdicts: Mapping[str, Verdict]) -> str:
    usable, why = kvm_device_usable()
    if not usable:
        return f"KVM: not available ({why}); guests run under TCG"
    if not cache_verdicts:
        return (
            "KVM: /dev/kvm opens; not yet proven by a probe boot (the first `kbulk run` probes it)"
        )
    lines = [
        f"KVM probe [{key.split('|')[2]}]: {v.accel} — {v.reason}"
        for key, v in cache_verdicts.items()
    ]
    return "\n".join(lines)
