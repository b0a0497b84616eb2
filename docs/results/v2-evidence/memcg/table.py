"""Print a run's module metrics and KTAP leaves (results.json) as Markdown tables.

python docs/results/v2-evidence/memcg/table.py results/<run>/results.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def leaves(node: dict[str, Any], path: list[str]) -> Iterator[tuple[str, str]]:
    subs = node.get("subtests") or []
    if not subs:
        yield ".".join(path), str(node.get("status"))
    for sub in subs:
        yield from leaves(sub, [*path, str(sub.get("name", "?"))])


def metric_tables(metrics: list[dict[str, Any]]) -> Iterator[str]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in metrics:
        if m["test"] != "env":
            groups.setdefault(m["test_path"][0], []).append(m)
    for group, rows in groups.items():
        keys: list[str] = []
        for m in rows:
            keys += [k for k in m["values"] if k not in keys]
        yield f"\n{group}:\n"
        yield "| test | " + " | ".join(keys) + " |"
        yield "| --- " * (len(keys) + 1) + "|"
        for m in rows:
            yield f"| {m['test']} | " + " | ".join(str(m["values"].get(k, "")) for k in keys) + " |"


def main(path: Path) -> None:
    data = json.loads(path.read_text())
    for run in data["runs"]:
        print(f"{run['arch']} [{run.get('accelerator')}]: {run['status']}, {run['message']}")
        print("\n".join(metric_tables(run["metrics"])))
        ktap = run.get("ktap")
        if ktap:
            print("\n| case | status |\n| --- | --- |")
            for name, status in leaves(ktap.get("root", ktap), []):
                print(f"| {name} | {status} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
