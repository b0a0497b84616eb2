"""Print the KUnit leaf results of a kbulk results.json: path<TAB>status.

Usage: python3 leaves.py RESULTS_JSON [ARCH]
"""

import json
import sys


def leaves(node, path=()):
    kids = node.get("children") or node.get("subtests") or []
    name = node.get("name")
    here = path + ((name,) if name and name != "main" else ())
    if not kids:
        yield here, node.get("status")
    for k in kids:
        yield from leaves(k, here)


def main():
    with open(sys.argv[1]) as f:
        d = json.load(f)
    arch = sys.argv[2] if len(sys.argv) > 2 else None
    for run in d["runs"]:
        if arch and run["arch"] != arch:
            continue
        for p, s in leaves(run["ktap"]["root"]):
            if p and p[0].startswith("page_alloc_bulk"):
                print(f"{run['arch']}\t{'.'.join(p)}\t{s}")


main()
