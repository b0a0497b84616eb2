"""Power control of a QEMU lab machine through its monitor socket.

Used as the inventory's power-cycle / power-off command:
    python -m harness.machine.labctl reset /path/monitor.sock
    python -m harness.machine.labctl off /path/monitor.sock
"""

from __future__ import annotations

import socket
import sys

_COMMANDS = {"reset": "system_reset", "off": "quit"}


def monitor(socket_path: str, command: str, timeout: float = 10.0) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        reply = b""
        while b"(qemu)" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        s.sendall(command.encode() + b"\n")
        # The monitor echoes input character by character; closing before the
        # next prompt can drop the command. Wait for the prompt (not after quit).
        reply = b""
        while command != "quit" and b"(qemu)" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.decode(errors="replace")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in _COMMANDS:
        print("usage: python -m harness.machine.labctl reset|off MONITOR_SOCKET", file=sys.stderr)
        return 2
    try:
        monitor(argv[1], _COMMANDS[argv[0]])
    except OSError as e:
        print(f"labctl: {argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
