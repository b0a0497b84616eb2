#!/usr/bin/env python3
"""Record a real console log as the job log a LAVA dispatcher writes for it.

Used once to make tests/data/lava/ (the parser unit test of `kbulk parse` on a
LAVA log): the console of a real local boot, every line a ``target`` record
(``- {"dt": ..., "lvl": "target", "msg": ...}``, as `lavacli jobs logs --raw`
prints it), between the dispatcher's own records, with the ``results`` records
LAVA's `test: monitors` action writes after each KTAP result line inside the
monitors' start/end markers (the patterns of `kbulk plan --format lava`).
Timestamps follow the kernel's printk times from a fixed start.

    python scripts/lava_log_from_console.py CONSOLE.log OUT.lava.log
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

START = dt.datetime(2026, 11, 29, 13, 0, 0, tzinfo=dt.UTC)
PRINTK = re.compile(r"^\[\s*(\d+\.\d+)\]")
RESULT = re.compile(r"(?P<result>ok|not ok) \d+ (?P<test_case_id>[^\s#]+)")
MONITORS = [  # name, start, end: as harness/scale/emit.py writes them
    ("kunit", "KTAP version 1", "kbulk-init: start"),
    ("kbulk-modules", "kbulk-init: start", "kbulk-init: done"),
]


def record(at: dt.datetime, level: str, msg: object) -> str:
    stamp = at.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return "- " + json.dumps({"dt": stamp, "lvl": level, "msg": msg}) + "\n"


def convert(console: Path, out: Path) -> None:
    lines = console.read_text(encoding="utf-8", errors="replace").splitlines()
    at = START
    text = [
        record(at, "info", "lava-dispatcher, installed at version: 2024.09"),
        record(at, "info", "start: 1 deploy-device-env (timeout 00:10:00) [common]"),
        record(at, "info", "end: 1 deploy-device-env (duration 00:00:02) [common]"),
        record(at, "info", "start: 2 qemu-boot (timeout 00:21:00) [common]"),
        record(at, "debug", "Boot command: /usr/bin/qemu-system-x86_64 -cpu max ..."),
    ]
    monitor = 0
    active = False
    boot = at
    for line in lines:
        if m := PRINTK.match(line):
            at = boot + dt.timedelta(seconds=5 + float(m.group(1)))
        text.append(record(at, "target", line))
        if monitor >= len(MONITORS):
            continue
        name, start, end = MONITORS[monitor]
        if not active and start in line:
            active = True
            text.append(record(at, "info", f"Waiting for {name} start: {start}"))
            continue
        if active and end in line:
            text.append(record(at, "info", f"ok: {name} end: {end}"))
            active, monitor = False, monitor + 1
            if monitor < len(MONITORS) and MONITORS[monitor][1] in line:
                active = True  # this line also starts the next monitor
            continue
        if active and (m := RESULT.search(line)):
            result = "pass" if m.group("result") == "ok" else "fail"
            case = m.group("test_case_id")
            text.append(record(at, "results", {"definition": name, "case": case,
                                               "result": result}))  # fmt: skip
    text += [
        record(at, "info", "end: 2 qemu-boot (duration 00:01:10) [common]"),
        record(at, "results", {"definition": "lava", "case": "job", "result": "pass"}),
    ]
    out.write_text("".join(text), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
