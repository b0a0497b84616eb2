"""Binary Debian packages of a given architecture, through the harness's private apt state.

Same approach as harness.source: apt-get with its own sources list and state
directory under the cache, so the host's apt configuration is never touched.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.kernel.source import DebianFetcher, SourceError

DEBIAN_ARCH = {"x86_64": "amd64", "arm64": "arm64"}


class ArchFetcher(DebianFetcher):
    """apt-get download for one Debian architecture, with a private state dir."""

    def __init__(self, cache: Path, arch: str, log: Callable[[str], None]) -> None:
        super().__init__(cache, log)
        self.debian_arch = DEBIAN_ARCH[arch]
        self.root = cache / "apt-machine" / self.debian_arch
        self.debs = cache / "machine-debs" / self.debian_arch
        self._updated = False

    def _options(self, suite: str) -> list[str]:
        return [
            *super()._options(suite),
            "-o", f"APT::Architecture={self.debian_arch}",
            "-o", f"APT::Architectures={self.debian_arch}",
        ]  # fmt: skip

    def update(self, suite: str) -> None:
        if self._updated:
            return
        self._prepare(suite)
        self.log(f"updating the {self.debian_arch} package list of Debian {suite}")
        self._apt("apt-get", suite, ["update"])
        self._updated = True

    def show_field(self, suite: str, package: str, field: str) -> str:
        out = self._apt("apt-cache", suite, ["show", "--no-all-versions", package])
        m = re.search(rf"^{field}: (.*)$", out, re.MULTILINE)
        return m.group(1) if m else ""

    def depends(self, suite: str, package: str) -> list[str]:
        deps = self.show_field(suite, package, "Depends")
        names = []
        for alternative in deps.split(","):
            first = alternative.split("|")[0].strip()
            if first:
                names.append(first.split()[0].split(":")[0])
        return names

    def library_closure(self, suite: str, packages: list[str]) -> list[str]:
        """The library packages (lib*, zlib*) the given packages depend on, recursively."""
        out = self._apt(
            "apt-cache",
            suite,
            [
                "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                "--no-breaks", "--no-replaces", "--no-enhances", *packages,
            ],
        )  # fmt: skip
        names = {line.strip() for line in out.splitlines() if not line.startswith((" ", "<"))}
        return sorted(n.split(":")[0] for n in names if n.startswith(("lib", "zlib")))

    def download(self, suite: str, packages: list[str]) -> dict[str, Path]:
        """Download (or reuse) the candidate version of each package; name -> .deb."""
        self.debs.mkdir(parents=True, exist_ok=True)
        found: dict[str, Path] = {}
        missing = []
        for name in packages:
            have = sorted(self.debs.glob(f"{name}_*_{self.debian_arch}.deb")) + sorted(
                self.debs.glob(f"{name}_*_all.deb")
            )
            if have:
                found[name] = have[-1]
            else:
                missing.append(name)
        if missing:
            self.update(suite)
            tmpdir = Path(tempfile.mkdtemp(dir=self.debs))
            try:
                self.log(f"downloading {len(missing)} {self.debian_arch} packages")
                self._apt("apt-get", suite, ["download", *missing], tmpdir)
                for deb in tmpdir.glob("*.deb"):
                    deb.replace(self.debs / deb.name)
            finally:
                shutil.rmtree(tmpdir, ignore_errors=True)
            for name in missing:
                have = sorted(self.debs.glob(f"{name}_*.deb"))
                if not have:
                    raise SourceError(f"apt-get download {name} ({self.debian_arch}) gave no .deb")
                found[name] = have[-1]
        return found


def extract(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
