"""SSH to a machine with paramiko: pinned host key, key authentication, time limits.

- The host key is pinned from the inventory and checked with RejectPolicy
  before authentication, so no command can run on an impostor; an unknown or
  changed key is refused with both fingerprints in the message.
- Key authentication only: no password, no agent, no keys looked up in ~/.ssh.
- Every command and upload has a time limit.
- Ready means: banner, login and a command that succeeds (QEMU's user-mode
  network accepts TCP long before sshd listens).
- Uploads are checked by sha256 on the far side.
Commands are argv lists, quoted with shlex.join for the remote shell.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shlex
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import paramiko

from harness.errors import HarnessError
from harness.machine.inventory import Machine
from harness.machine.keys import fingerprint_of_blob, fingerprint_of_line
from harness.record.status import RunStatus

CONNECT_TIMEOUT = 10.0
# paramiko logs every failed banner read (a machine still booting) through
# Python's last-resort handler; the harness reports failures itself.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
_OUTPUT_LIMIT = 1 << 20


class TransportError(HarnessError):
    """The machine could not be reached or a command on it failed: infra_error
    (the class status, through harness.errors.failure)."""

    status = RunStatus.INFRA_ERROR


class HostKeyRefused(TransportError):
    """The machine offered a host key other than the pinned one."""


class CommandTimeout(TransportError):
    """A command on the machine (not the kernel under test) took too long."""


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    exit_status: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


class _Refuse(paramiko.RejectPolicy):
    """RejectPolicy that names the fingerprint the machine offered."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> NoReturn:
        raise HostKeyRefused(
            f"{hostname} offered host key {key.get_name()} {fingerprint_of_blob(key.asbytes())}, "
            f"which is not the pinned key: refused before logging in"
        )


def _load_private_key(path: Path) -> paramiko.PKey:
    errors = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return cls.from_private_key_file(str(path))
        except (paramiko.SSHException, ValueError) as e:
            errors.append(f"{cls.__name__}: {e}")
        except OSError as e:
            raise TransportError(f"key file {path}: {e.strerror}") from e
    raise TransportError(f"key file {path}: not a usable private key ({'; '.join(errors)})")


class Connection:
    """One authenticated SSH connection to a machine."""

    def __init__(self, machine: Machine, timeout: float = CONNECT_TIMEOUT) -> None:
        self.machine = machine
        self.client = paramiko.SSHClient()
        keytype, blob = machine.host_key.split()[:2]
        key = paramiko.PKey.from_type_string(keytype, base64.b64decode(blob))
        host = machine.host if machine.port == 22 else f"[{machine.host}]:{machine.port}"
        self.client.get_host_keys().add(host, keytype, key)
        self.client.set_missing_host_key_policy(_Refuse())
        pkey = _load_private_key(machine.key_file)
        try:
            self.client.connect(
                machine.host,
                port=machine.port,
                username=machine.user,
                pkey=pkey,
                look_for_keys=False,
                allow_agent=False,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                channel_timeout=timeout,
            )
        except paramiko.BadHostKeyException as e:
            self.client.close()
            raise HostKeyRefused(
                f"{machine.name}: host key changed: offered "
                f"{fingerprint_of_blob(e.key.asbytes())}, pinned "
                f"{fingerprint_of_blob(e.expected_key.asbytes())}; refused before logging in"
            ) from None
        except HostKeyRefused as e:
            self.client.close()
            raise HostKeyRefused(f"{machine.name}: {e}") from None
        except paramiko.AuthenticationException as e:
            self.client.close()
            raise TransportError(f"{machine.name}: key authentication failed: {e}") from None
        except (OSError, paramiko.SSHException, EOFError) as e:
            self.client.close()
            raise TransportError(f"{machine.name}: cannot connect: {e or type(e).__name__}") from e

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _session(self, timeout: float) -> paramiko.Channel:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError(f"{self.machine.name}: connection lost")
        try:
            channel = transport.open_session(timeout=timeout)
        except (paramiko.SSHException, OSError, EOFError) as e:
            raise TransportError(f"{self.machine.name}: cannot open a session: {e}") from e
        channel.settimeout(1.0)
        return channel

    def _finish(
        self, channel: paramiko.Channel, argv: Sequence[str], started: float, deadline: float
    ) -> CommandResult:
        out, err = bytearray(), bytearray()
        try:
            while True:
                if time.monotonic() > deadline:
                    raise CommandTimeout(
                        f"{self.machine.name}: {shlex.join(argv)} did not finish in "
                        f"{deadline - started:.0f} s"
                    )
                while channel.recv_ready():
                    out += channel.recv(65536)[: _OUTPUT_LIMIT - len(out)]
                while channel.recv_stderr_ready():
                    err += channel.recv_stderr(65536)[: _OUTPUT_LIMIT - len(err)]
                if (
                    channel.exit_status_ready()
                    and not channel.recv_ready()
                    and not channel.recv_stderr_ready()
                ):
                    break
                time.sleep(0.02)
            status = channel.recv_exit_status()
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise TransportError(f"{self.machine.name}: {shlex.join(argv)}: {e}") from e
        finally:
            channel.close()
        return CommandResult(
            tuple(argv),
            status,
            out.decode(errors="replace"),
            err.decode(errors="replace"),
            time.monotonic() - started,
        )

    def run(self, argv: Sequence[str], timeout: float = 30.0) -> CommandResult:
        """Run argv on the machine (quoted for its shell) within timeout seconds."""
        started = time.monotonic()
        channel = self._session(timeout)
        try:
            channel.exec_command(shlex.join(argv))
        except (OSError, paramiko.SSHException, EOFError) as e:
            channel.close()
            raise TransportError(f"{self.machine.name}: {shlex.join(argv)}: {e}") from e
        return self._finish(channel, argv, started, started + timeout)

    def check(self, argv: Sequence[str], timeout: float = 30.0) -> str:
        """run(), raising TransportError unless the command succeeded; returns stdout."""
        result = self.run(argv, timeout)
        if not result.ok:
            raise TransportError(
                f"{self.machine.name}: {shlex.join(argv)} exited {result.exit_status}: "
                f"{result.stderr.strip()[-500:]}"
            )
        return result.stdout

    def start(self, argv: Sequence[str]) -> None:
        """Start argv and do not wait (for commands that end the connection: kexec -e)."""
        channel = self._session(CONNECT_TIMEOUT)
        try:
            channel.exec_command(shlex.join(argv))
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise TransportError(f"{self.machine.name}: {shlex.join(argv)}: {e}") from e

    def upload(self, local: Path, remote: str, timeout: float = 300.0) -> str:
        """Copy local to remote (an absolute path), verify its sha256 there, return it."""
        digest = hashlib.sha256()
        started = time.monotonic()
        deadline = started + timeout
        argv = ["sh", "-c", 'cat > "$1"', "kbulk-upload", remote]
        channel = self._session(timeout)
        try:
            channel.exec_command(shlex.join(argv))
            channel.settimeout(max(1.0, timeout))
            with local.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 16), b""):
                    if time.monotonic() > deadline:
                        raise CommandTimeout(
                            f"{self.machine.name}: upload of {local.name} took over {timeout:.0f} s"
                        )
                    digest.update(chunk)
                    channel.sendall(chunk)
            channel.shutdown_write()
        except (OSError, paramiko.SSHException, EOFError) as e:
            channel.close()
            raise TransportError(f"{self.machine.name}: upload of {local} failed: {e}") from e
        channel.settimeout(1.0)
        result = self._finish(channel, argv, started, deadline)
        if not result.ok:
            raise TransportError(
                f"{self.machine.name}: writing {remote} failed: {result.stderr.strip()[-500:]}"
            )
        remaining = max(5.0, deadline - time.monotonic())
        far = self.check(["sha256sum", remote], remaining).split()
        if not far or far[0] != digest.hexdigest():
            raise TransportError(
                f"{self.machine.name}: {remote} has sha256 {far[0] if far else '?'} there, "
                f"{digest.hexdigest()} here: upload corrupted"
            )
        return digest.hexdigest()


def host_key_fingerprint(machine: Machine) -> str:
    return fingerprint_of_line(machine.host_key)


def connect_when_ready(
    machine: Machine, within: float, probe: Sequence[str] = ("true",)
) -> Connection:
    """Wait until banner, login and probe succeed; a refused host key is final."""
    deadline = time.monotonic() + within
    last = "no attempt"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError(f"{machine.name}: not ready after {within:.0f} s ({last})")
        try:
            conn = Connection(machine, timeout=min(CONNECT_TIMEOUT, max(2.0, remaining)))
        except HostKeyRefused:
            raise
        except TransportError as e:
            last = str(e)
            time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
            continue
        try:
            conn.check(probe, timeout=min(30.0, max(5.0, remaining)))
            return conn
        except TransportError as e:
            conn.close()
            last = str(e)
            time.sleep(1.0)


def port_open(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
