"""Pages per node for every kbulk_numa case of a run: a Markdown table from results.json.

python docs/results/v2-evidence/numa/placement.py <results.json> [<arch>]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def statuses(node: dict[str, Any], path: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    here = (*path, node["name"]) if path or node["name"] != "main" else ()
    out = {here: node["status"]}
    for child in node.get("subtests", []):
        out.update(statuses(child, here))
    return out


def table(results: Path, arch: str) -> str:
    run = next(r for r in json.loads(results.read_text())["runs"] if r["arch"] == arch)
    status = statuses(run["ktap"]["root"])
    rows = ["| policy | case | verdict | node 0 pages | node 1 pages | outside the policy |",
            "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for metric in run["metrics"]:
        suite = metric["test_path"][0] if metric["test_path"] else ""
        if not suite.startswith("kbulk_numa_") or metric["test"] == "env":
            continue
        v = metric["values"]
        verdict = status.get((suite, metric["test"]), "?")
        rows.append(
            f"| {v['policy']} {v['policy_nodes']} | {metric['test']} | {verdict} | "
            f"{v.get('node0_pages')} | {v.get('node1_pages')} | {v['outside_pages']} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "x86_64"))
