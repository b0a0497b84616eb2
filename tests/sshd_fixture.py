"""A real OpenSSH sshd on a loopback port, with a temporary host key and authorized_keys."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.machine.inventory import Machine
from harness.machine.keys import KeyPair, generate

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    machine: Machine
    host_key: KeyPair
    client_key: KeyPair
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_sshd(tmp: Path) -> Iterator[Sshd]:
    if not os.path.exists(SSHD):
        raise RuntimeError(f"{SSHD} missing: scripts/setup.sh installs openssh-server")
    host_key = generate(tmp / "host_ed25519")
    client_key = generate(tmp / "client_ed25519")
    authorized = tmp / "authorized_keys"
    authorized.write_text(client_key.public_line + "\n")
    port = free_port()
    log = tmp / "sshd.log"
    config = tmp / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {host_key.private_path}",
                f"AuthorizedKeysFile {authorized}",
                "StrictModes no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "UsePAM no",
                "PidFile none",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    # sshd's privilege separation directory (made by the ssh service on a normal host)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config), "-E", str(log)],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "Server listening" in (log.read_text() if log.exists() else ""):
                break
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited {proc.returncode}: {log.read_text()}")
            time.sleep(0.05)
        machine = Machine(
            name="loopback-sshd",
            arch="x86_64",
            host="127.0.0.1",
            port=port,
            user=os.environ.get("USER", "root") if os.getuid() else "root",
            key_file=client_key.private_path,
            host_key=" ".join(host_key.public_line.split()[:2]),
            workdir=str(tmp / "remote"),
        )
        yield Sshd(machine, host_key, client_key, log, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp / "remote", ignore_errors=True)
