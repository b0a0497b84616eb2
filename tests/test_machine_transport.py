"""The paramiko transport against a real OpenSSH sshd started on a loopback port."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshd_fixture import Sshd, running_sshd

from harness.machine.keys import generate
from harness.machine.transport import (
    CommandTimeout,
    Connection,
    HostKeyRefused,
    TransportError,
    connect_when_ready,
    host_key_fingerprint,
)

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="sshd fixture logs in as root")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server
    assert server.process.poll() is not None, "sshd left running"


def test_runs_argv_without_shell_interpretation(sshd: Sshd) -> None:
    with Connection(sshd.machine) as conn:
        result = conn.run(["printf", "%s|", "a b", "$(id)", "x;y", "'q'"])
    assert result.ok
    assert result.stdout == "a b|$(id)|x;y|'q'|"


def test_exit_status_and_stderr_are_reported(sshd: Sshd) -> None:
    with Connection(sshd.machine) as conn:
        result = conn.run(["sh", "-c", "echo oops >&2; exit 7"])
        assert (result.exit_status, result.stderr.strip()) == (7, "oops")
        with pytest.raises(TransportError, match="exited 7"):
            conn.check(["sh", "-c", "exit 7"])


def test_command_time_limit(sshd: Sshd) -> None:
    with Connection(sshd.machine) as conn:
        started = time.monotonic()
        with pytest.raises(CommandTimeout, match="did not finish in 1 s"):
            conn.run(["sleep", "20"], timeout=1.0)
        assert time.monotonic() - started < 5


def test_upload_is_verified_by_sha256_on_the_far_side(sshd: Sshd, tmp_path: Path) -> None:
    local = tmp_path / "blob"
    local.write_bytes(os.urandom(300_000))
    remote = tmp_path / "far" / "blob copy"
    remote.parent.mkdir()
    with Connection(sshd.machine) as conn:
        digest = conn.upload(local, str(remote), timeout=30)
    assert digest == hashlib.sha256(local.read_bytes()).hexdigest()
    assert remote.read_bytes() == local.read_bytes()


def test_changed_host_key_is_refused_before_login(sshd: Sshd, tmp_path: Path) -> None:
    other = generate(tmp_path / "other_host_key")
    impostor = dataclasses.replace(sshd.machine, host_key=other.public_line)
    marker = tmp_path / "ran"
    before = sshd.log_text().count("Accepted publickey")
    with pytest.raises(HostKeyRefused) as refused, Connection(impostor) as conn:
        conn.run(["touch", str(marker)])
    message = str(refused.value)
    # the offered key's fingerprint is shown, and the pinned one
    assert sshd.host_key.fingerprint in message
    assert other.fingerprint in message
    assert not marker.exists()
    time.sleep(0.3)
    assert sshd.log_text().count("Accepted publickey") == before, "a login happened"


def test_unknown_key_type_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    # an ECDSA pin for a server that only has an ed25519 key: unknown, refused
    pinned = (
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEez"
        "OmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg="
    )
    with pytest.raises(HostKeyRefused, match=re.escape(sshd.host_key.fingerprint)):
        Connection(dataclasses.replace(sshd.machine, host_key=pinned))


def test_wrong_client_key_fails_authentication(sshd: Sshd, tmp_path: Path) -> None:
    stranger = generate(tmp_path / "stranger")
    with pytest.raises(TransportError, match="authentication failed"):
        Connection(dataclasses.replace(sshd.machine, key_file=stranger.private_path))


def test_ready_needs_a_command_that_succeeds(sshd: Sshd) -> None:
    conn = connect_when_ready(sshd.machine, within=10, probe=["uname", "-r"])
    conn.close()
    with pytest.raises(TransportError, match="not ready after 3 s"):
        connect_when_ready(sshd.machine, within=3, probe=["false"])


def test_a_port_that_accepts_tcp_is_not_ready(sshd: Sshd) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        accepted: list[socket.socket] = []

        def accept() -> None:
            try:
                while True:
                    accepted.append(listener.accept()[0])
            except OSError:
                return

        threading.Thread(target=accept, daemon=True).start()
        silent = dataclasses.replace(sshd.machine, port=listener.getsockname()[1])
        with pytest.raises(TransportError, match="not ready after 4 s"):
            connect_when_ready(silent, within=4)
        for conn in accepted:
            conn.close()
    assert accepted, "the silent port was never tried"


def test_fingerprint_is_the_openssh_one(sshd: Sshd) -> None:
    assert host_key_fingerprint(sshd.machine) == sshd.host_key.fingerprint
    assert host_key_fingerprint(sshd.machine).startswith("SHA256:")
