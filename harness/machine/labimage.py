"""The lab machine's boot files: Debian's stock kernel and an initramfs with sshd and kexec.

Everything comes from Debian packages of the lab's architecture (fetched
through the private apt state, cached): linux-image (kernel + the modules
virtio-net and ramoops need), busybox-static, dropbear-bin and kexec-tools with their
whole shared-library closure, found by following DT_NEEDED and checked so a
missing library (libgmp10 is easy to miss) fails here, not in the guest.
The host and client keys are generated on the host, so the lab's host key is
pinned before it ever boots.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.boot.guest import cpio
from harness.kernel.source import SourceError
from harness.machine.debs import ArchFetcher, extract
from harness.machine.keys import KeyPair, dropbear_host_key, generate

SUITE = "sid"
TOOLS = ["busybox-static", "dropbear-bin", "kexec-tools"]
# and what they depend on; ramoops is a module in Debian's kernel
MODULES = ["virtio_net", "ramoops"]
BINARIES = {"usr/sbin/dropbear": "sbin/dropbear", "usr/sbin/kexec": "sbin/kexec"}
_IMAGE_VERSION = "2"  # bump when the initramfs layout changes


class LabImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class LabImage:
    arch: str
    kernel: Path
    initramfs: Path
    kernel_release: str
    host_key: KeyPair
    client_key: KeyPair
    packages: dict[str, str]  # package -> .deb file name (versions)


def _readelf(args: list[str], path: Path) -> str:
    proc = subprocess.run(
        ["readelf", *args, str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise LabImageError(f"readelf {' '.join(args)} {path}: {proc.stderr.strip()}")
    return proc.stdout


def needed(path: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _readelf(["-d"], path))


def interpreter(path: Path) -> str | None:
    m = re.search(r"Requesting program interpreter: ([^\]]+)\]", _readelf(["-l"], path))
    return m.group(1) if m else None


def _find_library(root: Path, soname: str) -> Path | None:
    for pattern in (f"usr/lib/*/{soname}", f"lib/*/{soname}", f"usr/lib/{soname}"):
        for hit in sorted(root.glob(pattern)):
            return hit.resolve() if hit.is_symlink() else hit
    return None


def library_closure(root: Path, binaries: list[Path]) -> dict[str, Path]:
    """soname -> file under root, for everything the binaries need; error if one is missing."""
    found: dict[str, Path] = {}
    todo = list(binaries)
    while todo:
        current = todo.pop()
        for soname in needed(current):
            if soname in found:
                continue
            hit = _find_library(root, soname)
            if hit is None:
                raise LabImageError(
                    f"{current.name} needs {soname}, which no fetched package provides"
                )
            found[soname] = hit
            todo.append(hit)
    return found


def _module_file(modules_root: Path, name: str) -> Path:
    for hit in modules_root.rglob("*.ko*"):
        if hit.name.split(".ko")[0].replace("-", "_") == name:
            return hit
    raise LabImageError(f"module {name} not found under {modules_root}")


def _module_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko"):
        return data
    raise LabImageError(f"{path.name}: only plain or xz-compressed modules are supported")


def _module_depends(data: bytes) -> list[str]:
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
    return [d for d in m.group(1).decode().split(",") if d] if m else []


def module_load_order(modules_root: Path, wanted: list[str]) -> list[tuple[str, bytes]]:
    """The wanted modules and their dependencies, dependencies first."""
    order: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        data = _module_bytes(_module_file(modules_root, name))
        for dep in _module_depends(data):
            visit(dep)
        order.append((name, data))

    for name in wanted:
        visit(name)
    return order


INIT_SCRIPT = """#!/bin/busybox sh
# kbulk lab machine: network, sshd, pstore, and nothing else.
/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /var/tmp
mount -t devpts devpts /dev/pts
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
# a module's parameters from the command line (MODULE.param=value), as modprobe does
for m in $(cat /etc/kbulk-lab/modules); do
  args=
  for a in $(cat /proc/cmdline); do case "$a" in "$m".*) args="$args ${a#"$m".}";; esac; done
  insmod /lib/modules/$m.ko $args
done
echo "kbulk-lab: modules loaded"
mkdir -p /sys/fs/pstore
mount -t pstore pstore /sys/fs/pstore
echo "kbulk-lab: pstore mounted"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "kbulk-lab: $(uname -r) ready for ssh"
/sbin/dropbear -r /etc/dropbear/host_key -p 22 -s -F -E 2>/run/dropbear.log &
while :; do sleep 3600; done
"""


def _image_key(debs: dict[str, Path], host: KeyPair, client: KeyPair) -> str:
    h = hashlib.sha256(_IMAGE_VERSION.encode() + INIT_SCRIPT.encode())
    for name in sorted(debs):
        h.update(debs[name].name.encode())
    h.update(host.public_line.encode() + client.public_line.encode())
    return h.hexdigest()[:16]


def _stock_kernel_packages(fetcher: ArchFetcher) -> list[str]:
    meta = f"linux-image-{fetcher.debian_arch}"
    image = next((d for d in fetcher.depends(SUITE, meta) if d.startswith("linux-image-")), None)
    if image is None:
        raise LabImageError(f"{meta} names no linux-image package")
    parts = [
        d
        for d in fetcher.depends(SUITE, image)
        if d.startswith(("linux-binary-", "linux-modules-"))
    ]
    return parts or [image]


def build_lab_image(arch: str, cache: Path, log: Callable[[str], None]) -> LabImage:
    """Fetch (cached) and assemble the lab machine's kernel and initramfs for arch."""
    out = cache / "lab" / arch
    out.mkdir(parents=True, exist_ok=True)
    host_key = generate(out / "host_ed25519", "kbulk-lab-host")
    client_key = generate(out / "client_ed25519", "kbulk-lab-client")
    fetcher = ArchFetcher(cache, arch, log)
    manifest = out / "packages.json"
    try:
        if manifest.exists():
            names = json.loads(manifest.read_text())
        else:
            fetcher.update(SUITE)
            names = _stock_kernel_packages(fetcher) + TOOLS
            names += [n for n in fetcher.library_closure(SUITE, TOOLS) if n not in names]
            manifest.write_text(json.dumps(names, indent=1) + "\n")
        debs = fetcher.download(SUITE, names)
    except SourceError as e:
        raise LabImageError(f"lab machine packages ({arch}): {e}") from e
    key = _image_key(debs, host_key, client_key)
    kernel = out / f"vmlinuz-{key}"
    initramfs = out / f"initramfs-{key}.cpio"
    release_file = out / f"release-{key}"
    packages = {n: p.name for n, p in debs.items()}
    if kernel.exists() and initramfs.exists() and release_file.exists():
        release = release_file.read_text().strip()
        return LabImage(arch, kernel, initramfs, release, host_key, client_key, packages)
    log(f"assembling the {arch} lab machine image")
    staging = Path(tempfile.mkdtemp(prefix="lab-", dir=out))
    try:
        for deb in debs.values():
            extract(deb, staging)
        release = _assemble(staging, host_key, client_key, initramfs)
        vmlinuz = sorted(staging.glob("usr/lib/modules/*/vmlinuz")) + sorted(
            staging.glob("boot/vmlinuz-*")
        )
        if not vmlinuz:
            raise LabImageError(f"no vmlinuz in {', '.join(n for n in names if 'linux' in n)}")
        shutil.copyfile(vmlinuz[0], kernel)
        release_file.write_text(release + "\n")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return LabImage(arch, kernel, initramfs, release, host_key, client_key, packages)


def _assemble(staging: Path, host_key: KeyPair, client_key: KeyPair, out: Path) -> str:
    module_dirs = sorted(p for p in staging.glob("usr/lib/modules/*") if p.is_dir())
    module_dirs += sorted(p for p in staging.glob("lib/modules/*") if p.is_dir())
    if not module_dirs:
        raise LabImageError("the linux-image packages have no modules directory")
    release = module_dirs[0].name
    modules = module_load_order(module_dirs[0], MODULES)
    binaries = [staging / src for src in BINARIES]
    libs = library_closure(staging, binaries)
    interp = {i for b in binaries if (i := interpreter(b))}
    busybox = staging / "usr/bin/busybox"
    if not busybox.exists():
        busybox = staging / "bin/busybox"
    dirs = [
        "bin", "sbin", "usr", "usr/bin", "usr/sbin", "lib", "lib/modules", "etc", "etc/dropbear",
        "etc/kbulk-lab", "dev", "proc", "sys", "run", "var", "root",
    ]  # fmt: skip
    entries = [cpio.directory(d) for d in dirs]
    entries += [
        cpio.directory("tmp", 0o1777),
        cpio.directory("var/tmp", 0o1777),
        cpio.directory("root/.ssh", 0o700),
        cpio.char_device("dev/console", 5, 1),
        cpio.regular("init", INIT_SCRIPT.encode(), 0o755),
        cpio.regular("bin/busybox", busybox.read_bytes(), 0o755),
        cpio.regular("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
        cpio.regular("etc/group", b"root:x:0:\n"),
        cpio.regular("etc/shells", b"/bin/sh\n"),
        cpio.regular("etc/dropbear/host_key", dropbear_host_key(host_key.private_path), 0o600),
        cpio.regular("root/.ssh/authorized_keys", (client_key.public_line + "\n").encode(), 0o600),
        cpio.regular("etc/kbulk-lab/modules", " ".join(n for n, _ in modules).encode() + b"\n"),
    ]
    for src, dst in BINARIES.items():
        entries.append(cpio.regular(dst, (staging / src).read_bytes(), 0o755))
    for soname, path in sorted(libs.items()):
        entries.append(cpio.regular(f"lib/{soname}", path.read_bytes(), 0o755))
    for loader in sorted(interp):
        parent = Path(loader.lstrip("/")).parent
        if str(parent) not in dirs and str(parent) != ".":
            entries.append(cpio.directory(str(parent)))
            dirs.append(str(parent))
        real = _find_library(staging, Path(loader).name)
        if real is None:
            raise LabImageError(f"the dynamic loader {loader} is in no fetched package")
        entries.append(cpio.regular(loader.lstrip("/"), real.read_bytes(), 0o755))
    for name, data in modules:
        entries.append(cpio.regular(f"lib/modules/{name}.ko", data))
    for entry in entries:
        assert not stat.S_ISLNK(entry.mode)
    cpio.write_cpio(out, entries)
    return release
