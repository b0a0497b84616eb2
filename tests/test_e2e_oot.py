"""End to end: an out-of-tree module from a directory outside the repository, named
by a run definition beside it, built against the main job's x86_64 kernel, loaded by
the guest's init, and its output turned into metrics by the run definition's own
regular expressions (issue 12, section 3).

The run definition keeps the main job's configuration (configs/default.yaml), so the
kernel build is the one the main job (and test_e2e.py) already made: only the small
module is compiled. KUnit is filtered to a suite that does not exist, so the boot runs
the module alone (about a minute under TCG on this 2-core machine, warm).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import REPO_ROOT

pytestmark = pytest.mark.e2e

# A module nobody in this project wrote the harness for: one alloc_pages_bulk()
# request of GFP_KERNEL pages on an idle guest, reported in its own words (not
# KTAP metric lines), then a KTAP result. It returns -EAGAIN so it is not left
# loaded, as lib/test_vmalloc.c does.
MODULE_C = r"""// SPDX-License-Identifier: GPL-2.0
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>

static unsigned int nr_pages = 16;
module_param(nr_pages, uint, 0444);

static int __init oot_probe_init(void)
{
	struct page **pages;
	unsigned long filled, i;

	pages = kcalloc(nr_pages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	filled = alloc_pages_bulk(GFP_KERNEL, nr_pages, pages);
	pr_info("oot_probe: bulk request of %u pages: %lu filled\n", nr_pages, filled);
	for (i = 0; i < nr_pages; i++)
		if (pages[i])
			__free_page(pages[i]);
	kfree(pages);
	pr_info("KTAP version 1\n");
	pr_info("1..1\n");
	pr_info("%s 1 oot_probe\n", filled == nr_pages ? "ok" : "not ok");
	return -EAGAIN;
}
module_init(oot_probe_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kbulk e2e: an out-of-tree module read with regex rules");
"""

MODULE_ENTRY = r"""modules:
  load:
    - name: oot_probe
      dir: oot-modules
      params: [nr_pages=24]
      load_rc: -EAGAIN
      metrics:
        - pattern: 'oot_probe: bulk request of (?P<requested>\d+) pages: (?P<filled>\d+) filled'
          case: bulk_gfp_kernel
          values:
            requested: {unit: pages, better: neutral, kind: info}
            filled: {unit: pages, better: higher, threshold: 0, kind: count}
"""


def test_out_of_tree_module_metrics_reach_results_json(tmp_path: Path) -> None:
    modules = tmp_path / "oot-modules"
    modules.mkdir()
    (modules / "oot_probe.c").write_text(MODULE_C)
    (modules / "Kbuild").write_text("obj-m := oot_probe.o\n")
    default = (REPO_ROOT / "configs" / "default.yaml").read_text()
    head, _, _ = default.partition("modules:\n")
    _, _, tail = default.partition("boot:\n")
    spec = tmp_path / "oot.yaml"
    spec.write_text(head + MODULE_ENTRY + "boot:\n" + tail)
    assert not spec.resolve().is_relative_to(REPO_ROOT)
    root = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--spec", str(spec), "--arch", "x86_64",
         "--suites", "kbulk_no_such_suite", "--results", str(root)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=3600,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    print(output)
    (result_dir,) = list(root.iterdir())
    data = json.loads((result_dir / "results.json").read_text())
    (run,) = data["runs"]
    assert run["status"] == "pass", (run["message"], output)
    assert proc.returncode == 0
    assert run["module_steps"] == {"oot_probe": -11}  # -EAGAIN: as declared, not a failure
    mine = [m for m in run["metrics"] if m["test_path"] == ["oot_probe"]]
    # GFP_KERNEL may sleep and reclaim: on an idle 1 GiB guest the request is filled.
    assert mine == [
        {"test_path": ["oot_probe"], "test": "bulk_gfp_kernel",
         "values": {"requested": 24, "filled": 24}},
    ]  # fmt: skip
    declared = {d["metric"]: d for d in data["meta"]["module_metrics"]}
    assert declared["filled"]["better"] == "higher"
    file, _, line = declared["filled"]["source"].rpartition(":")
    assert file == str(spec)
    assert spec.read_text().splitlines()[int(line) - 1].strip().startswith("filled:")
    leaves = json.dumps(run["ktap"])
    assert "oot_probe" in leaves
