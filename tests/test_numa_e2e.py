"""End to end: a two-node NUMA guest (configs/numa.yaml, x86_64) and kbulk_numa under
each task mempolicy the guest init sets. One build, one boot (about 2.5 minutes warm)."""

from __future__ import annotations

import re

import pytest
from test_e2e import Invocation, kbulk, leaf_tests

pytestmark = pytest.mark.e2e

POLICIES = ["default", "bind", "preferred", "preferred_many", "interleave"]
REFERENCE = ["numa_nodes_online", "alloc_pages_order0", "folio_alloc_order2"]


@pytest.fixture(scope="module")
def numa_job(tmp_path_factory: pytest.TempPathFactory) -> Invocation:
    root = tmp_path_factory.mktemp("numa")
    return kbulk(root, "run", "--spec", "configs/numa.yaml", "--arch", "x86_64")


def test_guest_has_two_nodes_and_the_modules_run_under_each_policy(numa_job: Invocation) -> None:
    run = numa_job.run_for("x86_64")
    # folio_alloc_bulk()'s verdicts depend on the series (finding 5): pass or fail, never
    # a crash, a timeout or a module that did not load.
    assert run["status"] in ("pass", "fail"), run["message"]
    assert "module load failed" not in run["message"], run["message"]
    argv = run["boot"]["qemu_argv"]
    assert argv.count("-numa") == 2 and run["boot"]["numa_nodes"] == 2
    console = (numa_job.result_dir / run["console_log"]).read_text()
    # The kernel's own account of the layout QEMU gave it (ACPI SRAT on x86_64).
    assert re.search(r"NODE_DATA\(1\) allocated|Initmem setup node 1", console), console[:4000]
    for line in ["bind 1", "preferred 1", "preferred_many 1", "interleave 0,1"]:
        assert f"kbulk-init: mempolicy {line}\n" in console, line
    leaves = dict(leaf_tests(run["ktap"]["root"]))
    for policy in POLICIES:
        suite = f"kbulk_numa_{policy}"
        # The references honour the policy by definition: they prove the init applied it
        # and that both nodes have memory.
        for case in REFERENCE:
            assert leaves.get((suite, case)) == "pass", (suite, case, leaves)
    # The placement figures reach the results as metrics, one line per case and policy.
    placed = {
        (m["test_path"][0], m["test"]): m["values"]
        for m in run["metrics"]
        if m["test_path"] and m["test_path"][0].startswith("kbulk_numa_")
    }
    bind = placed[("kbulk_numa_bind", "alloc_pages_order0")]
    assert int(bind["node1_pages"]) == int(bind["pages"]) > 0 and int(bind["node0_pages"]) == 0
