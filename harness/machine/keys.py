"""Ed25519 key pairs for the harness's own test machines and sshd fixtures.

Keys are generated on the host, so the lab machine's host key is known (and
pinned) before it ever boots: nothing is learnt from what the machine says.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class KeyPair:
    private_path: Path  # OpenSSH format, mode 0600
    public_line: str  # "ssh-ed25519 AAAA..."

    @property
    def fingerprint(self) -> str:
        return fingerprint_of_line(self.public_line)


def fingerprint_of_blob(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob."""
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def fingerprint_of_line(line: str) -> str:
    return fingerprint_of_blob(base64.b64decode(line.split()[1]))


def generate(path: Path, comment: str = "kbulk") -> KeyPair:
    """Write a new ed25519 private key (OpenSSH format) to path; keep an existing one."""
    if path.exists():
        key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey), f"{path}: not an ed25519 key"
    else:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        tmp.replace(path)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return KeyPair(path, f"{public.decode()} {comment}".strip())


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def dropbear_host_key(path: Path) -> bytes:
    """The ed25519 private key at path in dropbear's own key file format."""
    key = serialization.load_ssh_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey), f"{path}: not an ed25519 key"
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return _ssh_string(b"ssh-ed25519") + _ssh_string(seed + public)
