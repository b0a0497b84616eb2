"""Obtain a pristine kernel source tree and cache it.

Three origins:
- a Debian ``linux-source-X.Y`` package, pinned by version (and sha256), fetched
  with a private apt configuration so the host's apt setup is never changed;
- a tarball on disk;
- a local kernel tree (used in place, never modified).

Extracted trees are cached by the checksum of what they came from and are
only published (renamed into place) once extraction finished.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.record.status import RunStatus

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


Log = Callable[[str], None]  # a progress line for the user


class SourceError(HarnessError):
    """The kernel source could not be obtained (download, checksum, extraction)."""

    status = RunStatus.INFRA_ERROR


@dataclass(frozen=True)
class DebianPackage:
    package: str  # e.g. linux-source-7.2
    version: str  # e.g. 7.2.13-1
    suite: str  # e.g. sid
    sha256: str | None = None


@dataclass(frozen=True)
class SourceTree:
    path: Path
    kernel_version: str  # from the top-level Makefile, e.g. 7.2.13
    origin: str  # human description: "debian:linux-source-7.2=7.2.13-1"
    checksum: str  # sha256 of the package/tarball, or "local:<path>"
    local: bool = False  # a developer's own tree: never modified by the harness


def kernel_version_of(tree: Path) -> str:
    makefile = tree / "Makefile"
    try:
        text = makefile.read_text(errors="replace")[:2000]
    except OSError as e:
        raise SourceError(f"{tree} is not a kernel tree: cannot read {makefile}: {e}") from e
    fields = {}
    for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"):
        m = re.search(rf"^{key}[ \t]*=[ \t]*(\S*)", text, re.MULTILINE)
        fields[key] = m.group(1) if m else ""
    if not fields["VERSION"]:
        raise SourceError(f"{makefile} has no VERSION line: is {tree} a kernel tree?")
    version = f"{fields['VERSION']}.{fields['PATCHLEVEL']}"
    if fields["SUBLEVEL"] and fields["SUBLEVEL"] != "0":
        version += f".{fields['SUBLEVEL']}"
    return version + fields["EXTRAVERSION"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _extract_tarball(tarball: Path, dest: Path, log: Log) -> Path:
    """Extract tarball into dest (created atomically); return the kernel tree inside."""
    if dest.exists():
        return _single_subdir(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", dir=dest.parent))
    try:
        log(f"extracting {tarball.name} (about 40 s for a full kernel)")
        # tar(1) is several times faster than tarfile for .tar.xz
        if shutil.which("tar"):
            subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp)], check=True)
        else:  # pragma: no cover - every Debian has tar
            with tarfile.open(tarball) as tf:
                tf.extractall(tmp, filter="data")
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _single_subdir(dest)


def _single_subdir(dest: Path) -> Path:
    entries = [p for p in dest.iterdir() if p.is_dir()]
    if (dest / "Makefile").exists():
        return dest
    if len(entries) != 1:
        raise SourceError(f"{dest}: expected one kernel directory inside, found {len(entries)}")
    return entries[0]


def from_local_tree(path: Path) -> SourceTree:
    path = path.expanduser().resolve()
    if not (path / "Makefile").is_file() or not (path / "Kconfig").is_file():
        raise SourceError(f"--source {path}: not a kernel tree (no Makefile/Kconfig at its top)")
    if (path / ".config").exists():
        raise SourceError(
            f"--source {path}: the tree has an in-tree build (.config); out-of-tree builds "
            f"need a clean source: run `make -C {path} mrproper` first"
        )
    return SourceTree(path, kernel_version_of(path), f"local:{path}", f"local:{path}", True)


def from_tarball(tarball: Path, cache: Path, log: Log) -> SourceTree:
    tarball = tarball.expanduser().resolve()
    if not tarball.is_file():
        raise SourceError(f"--source {tarball}: no such tarball")
    digest = sha256_file(tarball)
    tree = _extract_tarball(tarball, cache / "sources" / f"tarball-{digest[:16]}", log)
    return SourceTree(tree, kernel_version_of(tree), f"tarball:{tarball.name}", digest)


class DebianFetcher:
    """apt-get with a private sources list and state dir under the cache."""

    def __init__(self, cache: Path, log: Log) -> None:
        self.root = cache / "apt"
        self.log = log

    def _options(self, suite: str) -> list[str]:
        state = self.root / suite
        return [
            "-o", f"Dir::Etc::sourcelist={state / 'sources'}",
            "-o", "Dir::Etc::sourceparts=/nonexistent",
            "-o", f"Dir::State::Lists={state / 'lists'}",
            "-o", f"Dir::Cache={state / 'cache'}",
            "-o", "Debug::NoLocking=1",
            # the _apt sandbox user cannot write into a root-owned cache dir
            "-o", "APT::Sandbox::User=root",
        ]  # fmt: skip

    def _prepare(self, suite: str) -> None:
        state = self.root / suite
        for sub in ("lists/partial", "cache/archives/partial"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        (state / "sources").write_text(
            f"deb [signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {suite} main\n"
        )

    def _apt(self, tool: str, suite: str, args: list[str], cwd: Path | None = None) -> str:
        if shutil.which(tool) is None:
            raise SourceError(f"{tool} not found: Debian packages need a Debian/Ubuntu host")
        cmd = [tool, *self._options(suite), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
        if proc.returncode != 0:
            raise SourceError(f"{' '.join([tool, *args])} failed:\n{proc.stderr.strip()[-2000:]}")
        return proc.stdout

    def fetch(self, pkg: DebianPackage) -> Path:
        """Return the path of the pinned .deb, downloading it if needed."""
        debs = self.root / "debs"
        name = f"{pkg.package}_{pkg.version.split(':')[-1]}_all.deb"
        deb = debs / name
        if deb.exists() and (pkg.sha256 is None or sha256_file(deb) == pkg.sha256):
            return deb
        self._prepare(pkg.suite)
        self.log(f"updating the package list of Debian {pkg.suite} (private apt state)")
        self._apt("apt-get", pkg.suite, ["update"])
        available = self._available_versions(pkg)
        if pkg.version not in available:
            have = ", ".join(available) or "none"
            raise SourceError(
                f"{pkg.package} version {pkg.version} is no longer in Debian {pkg.suite} "
                f"(available: {have}). Pin an available version in the run definition "
                f"(source.debian.version and sha256), or pass --source with a tarball or a "
                f"local kernel tree."
            )
        debs.mkdir(parents=True, exist_ok=True)
        tmpdir = Path(tempfile.mkdtemp(dir=debs))
        try:
            self.log(f"downloading {pkg.package}={pkg.version} (about 164 MB)")
            self._apt("apt-get", pkg.suite, ["download", f"{pkg.package}={pkg.version}"], tmpdir)
            got = list(tmpdir.glob("*.deb"))
            if len(got) != 1:
                raise SourceError(f"apt-get download produced {len(got)} files in {tmpdir}")
            digest = sha256_file(got[0])
            if pkg.sha256 and digest != pkg.sha256:
                raise SourceError(
                    f"{got[0].name}: sha256 {digest} does not match the pinned {pkg.sha256}; "
                    f"the archive changed under the same version: check before updating the pin"
                )
            got[0].replace(deb)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return deb

    def _available_versions(self, pkg: DebianPackage) -> list[str]:
        out = self._apt("apt-cache", pkg.suite, ["madison", pkg.package])
        return [line.split("|")[1].strip() for line in out.splitlines() if line.count("|") >= 2]


def from_debian(pkg: DebianPackage, cache: Path, log: Log) -> SourceTree:
    tree_dir = cache / "sources" / f"{pkg.package}_{pkg.version}"
    marker = tree_dir / ".kbulk-origin"
    if marker.exists():
        tree = _single_subdir(tree_dir)
        digest = marker.read_text().strip()
        return SourceTree(tree, kernel_version_of(tree), _origin(pkg), digest)
    deb = DebianFetcher(cache, log).fetch(pkg)
    digest = sha256_file(deb)
    unpack = Path(tempfile.mkdtemp(prefix="deb.", dir=deb.parent))
    try:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(unpack)], check=True)
        tarballs = list((unpack / "usr" / "src").glob("linux-source-*.tar.*"))
        if len(tarballs) != 1:
            raise SourceError(f"{deb.name}: expected one usr/src/linux-source-*.tar.* inside")
        tree = _extract_tarball(tarballs[0], tree_dir, log)
    finally:
        shutil.rmtree(unpack, ignore_errors=True)
    marker.write_text(digest + "\n")
    return SourceTree(tree, kernel_version_of(tree), _origin(pkg), digest)


def _origin(pkg: DebianPackage) -> str:
    return f"debian:{pkg.package}={pkg.version}"
