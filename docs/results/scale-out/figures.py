#!/usr/bin/env python3
"""Compare two `kbulk compare` outputs (compare.json) row by row: the same kernels,
tests and metric rows?  Which figures and verdicts are equal, per test module?

    python figures.py WHOLE/compare.json MERGED/compare.json
"""

from __future__ import annotations

import collections
import json
import sys


def verdict(row: dict) -> str:
    return str(row.get("verdict"))


def rows(path: str) -> tuple[dict, dict]:
    with open(path) as fh:
        data = json.load(fh)
    out = {}
    for arch in data["arches"]:
        for m in arch["metrics"]:
            out[(arch["arch"], m["group"], m["case"], m["key"])] = m
    return data, out


def main() -> None:
    (whole, a), (merged, b) = rows(sys.argv[1]), rows(sys.argv[2])
    for side in ("baseline", "patched"):
        sha_a = sorted(r["image_sha256"] for r in whole[side]["runs"])
        sha_b = sorted(r["image_sha256"] for r in merged[side]["runs"])
        print(
            f"{side}: kernels {whole[side]['kernels']} == {merged[side]['kernels']}:",
            whole[side]["kernels"] == merged[side]["kernels"],
            "| image sha256 equal:",
            sha_a == sha_b,
            "| statuses:",
            sorted({r["status"] for r in whole[side]["runs"]}),
            sorted({r["status"] for r in merged[side]["runs"]}),
        )
    tests_a = [
        (x["arch"], json.dumps(t, sort_keys=True)) for x in whole["arches"] for t in x["tests"]
    ]
    tests_b = [
        (x["arch"], json.dumps(t, sort_keys=True)) for x in merged["arches"] for t in x["tests"]
    ]
    print("test rows equal:", tests_a == tests_b)
    print("metric rows: whole", len(a), "merged", len(b), "same keys:", set(a) == set(b))
    figures = collections.Counter()
    verdicts = collections.Counter()
    for key in sorted(set(a) & set(b)):
        group = key[1]
        same = all(
            (a[key][s] or {}).get("values") == (b[key][s] or {}).get("values")
            for s in ("baseline", "patched")
        )
        figures[(group, same)] += 1
        verdicts[(group, verdict(a[key]) == verdict(b[key]))] += 1
    for group in sorted({k[0] for k in figures}):
        print(
            f"{group}: figures equal in {figures[(group, True)]} of "
            f"{figures[(group, True)] + figures[(group, False)]} rows; verdicts equal in "
            f"{verdicts[(group, True)]} of {verdicts[(group, True)] + verdicts[(group, False)]}"
        )
    print("whole :", whole["verdict"])
    print("merged:", merged["verdict"])


if __name__ == "__main__":
    main()
