#!/usr/bin/env python3
"""JUnit writing time against the number of cases in one suite, and for an absurd plan.

    .venv/bin/python scripts/bench_junit.py [--sizes 1000,2000,4000,8000]

Linear writing shows as a constant time per case across sizes (junitparser's
add_testcase() recounted the suite on every add: time per case grew with N).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.analysis.ktap import parse_ktap
from harness.record.junit import write_junit
from harness.record.run import ArchRun
from harness.record.status import RunStatus


def suite_text(cases: int) -> str:
    body = "".join(f"    ok {i} case_{i}\n" for i in range(1, cases + 1))
    head = f"KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: big\n    1..{cases}\n"
    return f"{head}{body}ok 1 big\n"


def timed(text: str, out: Path) -> tuple[float, int]:
    run = ArchRun("x86_64", "k", RunStatus.PASS, ktap=parse_ktap(text))
    started = time.perf_counter()
    write_junit(out, [run])
    return time.perf_counter() - started, out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,2000,4000,8000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "junit.xml"
        print(f"{'cases':>8} {'seconds':>9} {'us/case':>9} {'bytes':>10}")
        for n in (int(s) for s in args.sizes.split(",")):
            took, size = timed(suite_text(n), out)
            print(f"{n:>8} {took:>9.3f} {took / n * 1e6:>9.1f} {size:>10}")
        absurd = "KTAP version 1\n1..1\n    KTAP version 1\n    # Subtest: absurd\n"
        took, size = timed(absurd + f"    1..{10**23}\n    ok 1 first\n", out)
        print(f"plan of 10^23 tests: {took:.3f} s, {size} bytes")


if __name__ == "__main__":
    main()
