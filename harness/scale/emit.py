"""A plan in the forms CI engines take: a GitLab child pipeline, a GitHub Actions
matrix, LAVA job definitions (qemu device type, one per cell).

Every command written into a pipeline is an argv joined with ``shlex.join``: plan
inputs (paths, globs, kernel arguments) never become shell syntax.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import yaml

from harness.kernel.arch import get_arch
from harness.pipeline import validate_suites
from harness.scale.plan import Plan, PlanError
from harness.spec import RunSpec

__all__ = ["CELLS_DIR", "MERGED_DIR", "github_matrix", "gitlab_child", "lava_jobs"]

_MAX_NEEDS = 50  # GitLab's default limit of `needs` entries per job
CELLS_DIR = "cells"  # where cell jobs write, relative to the job's directory
MERGED_DIR = "merged"

# Cache entries shared with ci/gitlab-ci.yml: the pinned .deb and ccache only.
_DEB_CACHE = {
    "key": {"prefix": "kbulk-deb", "files": ["configs/default.yaml"]},
    "paths": [".kbulk-cache/apt/debs/"],
}


class _Dumper(yaml.SafeDumper):
    """No &anchors/*aliases for repeated values: every job reads on its own."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000)


def _kbulk(*args: str) -> str:
    """A shell line running the harness with $KBULK_PYTHON (the venv's by default)."""
    return '"$KBULK_PYTHON" -m harness.cli ' + shlex.join(args)


def cell_command(plan: Plan, cell_id: str) -> list[str]:
    """`kbulk run` arguments of one cell: recompute the plan from its inputs, and
    refuse to run if that gives another plan (the repository changed)."""
    out = f"{CELLS_DIR}/{cell_id}"
    return ["run", "--cell", cell_id, "--out", out, "--expect-plan", plan.plan_id,
            *plan.inputs.args()]  # fmt: skip


def _timeout_minutes(spec: RunSpec, plan: Plan) -> int:
    """A cell builds one kernel (cold: about 20 min for arm64 on 2 cores) and boots it once."""
    boot = plan.inputs.timeout or spec.boot.timeout
    return 45 + int(boot // 60)


def gitlab_child(plan: Plan, spec: RunSpec) -> str:
    """A child pipeline: one job per cell, then a merge job that publishes JUnit and
    summary.md (and, for A/B plans, a report job: the comparison report)."""
    timeout = f"{_timeout_minutes(spec, plan)}m"
    doc: dict[str, Any] = {
        "variables": {
            "KBULK_PYTHON": ".venv/bin/python",
            "KBULK_SETUP": "scripts/setup.sh",  # empty: the runner is already set up
            "CCACHE_MAXSIZE": "2G",
        },
        "default": {
            "image": "debian:bookworm",  # ignored by shell runners
            "timeout": timeout,
            "interruptible": True,
            "retry": {"max": 1, "when": ["runner_system_failure", "scheduler_failure"]},
            "before_script": [
                'export KBULK_CACHE="${KBULK_CACHE:-$PWD/.kbulk-cache}"',
                'if [ -n "$KBULK_SETUP" ]; then bash "$KBULK_SETUP"; fi',
            ],
        },
        "stages": ["cells", "merge"],
    }
    for cell in plan.cells:
        doc[cell.id] = {
            "stage": "cells",
            "timeout": timeout,
            "cache": [
                _DEB_CACHE,
                {"key": f"kbulk-ccache-{cell.arch}", "paths": [".kbulk-cache/ccache/"]},
            ],
            "script": [_kbulk(*cell_command(plan, cell.id))],
            "artifacts": {"when": "always", "paths": [f"{CELLS_DIR}/{cell.id}/"]},
        }
    merge = ["merge", *(f"{CELLS_DIR}/{c.id}" for c in plan.cells), "--out", MERGED_DIR]
    # The merge stage follows every cell anyway; `needs` lists them only where
    # GitLab allows (50 by default), else the stage order and its default
    # artifacts (every earlier job's) do the same.
    needs = [{"job": c.id, "artifacts": True} for c in plan.cells]
    doc["merge"] = {
        "stage": "merge",
        **({"needs": needs} if len(needs) <= _MAX_NEEDS else {}),
        "timeout": "15m",
        "when": "always",  # failed cells are results too
        "script": [_kbulk(*merge)],
        "artifacts": {
            "when": "always",
            "paths": [f"{MERGED_DIR}/"],
            "reports": {"junit": f"{MERGED_DIR}/junit.xml"},
        },
    }
    if plan.inputs.mode == "ab":
        # The comparison report. Exit 1 (a regression beyond threshold) marks the
        # job as a warning, as `kbulk ab` keeps its exit status for the runs: the
        # verdict is in report.md; a refusal (8) or a malformed result (10) fails.
        doc["stages"].append("report")
        doc["report"] = {
            "stage": "report",
            "timeout": "15m",
            "needs": [{"job": "merge", "artifacts": True}],
            "script": [_kbulk("compare", MERGED_DIR)],
            "allow_failure": {"exit_codes": [1]},
            "artifacts": {
                "when": "always",
                "paths": [f"{MERGED_DIR}/report.md", f"{MERGED_DIR}/report.html",
                          f"{MERGED_DIR}/compare.json"],
            },
        }  # fmt: skip
    header = (
        f"# Generated by `kbulk plan --format gitlab` (plan {plan.plan_id}, "
        f"{len(plan.cells)} cells): one job per cell, then the merge.\n"
    )
    return header + _yaml(doc)


def github_matrix(plan: Plan) -> str:
    """``strategy.matrix`` for the cell jobs (``fromJSON`` of the plan job's output)."""
    include = [{"cell": c.id, "arch": c.arch} for c in plan.cells]
    return json.dumps({"include": include}, separators=(",", ":"))


# LAVA's qemu device type names architectures the Debian way.
_LAVA_ARCH = {"x86_64": "amd64", "arm64": "arm64"}

# KTAP result lines (KUnit's and the test modules'), for LAVA's monitor: the
# harness reparses the fetched log itself; this only gives LAVA's own view.
_KTAP_RESULT = r"(?P<result>ok|not ok) \d+ (?P<test_case_id>[^\s#]+)"


def _kernel_cmdline(plan: Plan, spec: RunSpec, console: str) -> str:
    args = [f"console={console}", *spec.boot.cmdline]
    suites = plan.inputs.suites if plan.inputs.suites is not None else spec.kunit_filter
    if suites:
        args.append(f"kunit.filter_glob={validate_suites(suites)}")
    args += plan.inputs.cmdline
    for arg in args:
        if any(c in arg for c in "\"'\\ \n"):
            raise PlanError(f"kernel argument {arg!r}: quotes, spaces and backslashes "
                            "cannot go into a LAVA image_arg")  # fmt: skip
    return " ".join(args)


def lava_jobs(plan: Plan, spec: RunSpec, artifacts_url: str) -> dict[str, str]:
    """One LAVA job definition per cell (cell ID -> YAML): the cell's kernel and guest
    initramfs from ``artifacts_url/<cell>/``, booted by LAVA's qemu device type; a
    `test: monitors` action follows KUnit (which runs before init) and the guest init's
    start/done markers with its KTAP; `kbulk parse` reads the fetched log afterwards."""
    if not artifacts_url.startswith(("http://", "https://", "file://")):
        raise PlanError(f"--artifacts-url {artifacts_url}: an absolute URL LAVA can fetch")
    base = artifacts_url.rstrip("/")
    boot_minutes = int((plan.inputs.timeout or spec.boot.timeout) // 60) + 1
    jobs = {}
    for cell in plan.cells:
        arch = get_arch(cell.arch)
        machine = arch.qemu_machine_tcg
        options = ["-no-reboot", f"-smp {spec.boot.smp}"]
        if spec.boot.icount is not None:
            options.append(f"-icount shift={spec.boot.icount},sleep=off")
        monitors = []
        suites = plan.inputs.suites if plan.inputs.suites is not None else spec.kunit_filter
        if suites:  # built-in KUnit runs at boot, before the init starts
            monitors.append(
                {"name": "kunit", "start": "KTAP version 1", "end": "kbulk-init: start",
                 "pattern": _KTAP_RESULT, "fixupdict": {"ok": "pass", "not ok": "fail"}}
            )  # fmt: skip
        if plan.inputs.modules and spec.modules:
            monitors.append(
                {"name": "kbulk-modules", "start": "kbulk-init: start",
                 "end": "kbulk-init: done", "pattern": _KTAP_RESULT,
                 "fixupdict": {"ok": "pass", "not ok": "fail"}}
            )  # fmt: skip
        if not monitors:
            monitors.append(
                {"name": "kbulk-init", "start": "kbulk-init: start", "end": "kbulk-init: done",
                 "pattern": _KTAP_RESULT, "fixupdict": {"ok": "pass", "not ok": "fail"}}
            )  # fmt: skip
        cmdline = _kernel_cmdline(plan, spec, arch.console)
        job = {
            "device_type": "qemu",
            "job_name": f"kbulk {plan.plan_id} {cell.id}",
            "timeouts": {
                "job": {"minutes": boot_minutes + 15},
                "action": {"minutes": boot_minutes + 5},
                "connection": {"minutes": 2},
            },
            "priority": "medium",
            "visibility": "public",
            "metadata": {"kbulk.plan_id": plan.plan_id, "kbulk.cell": cell.id},
            "context": {
                "arch": _LAVA_ARCH[cell.arch],
                "machine": machine[1].split(",")[0],
                "cpu": machine[3],
                "memory": _memory_mb(spec.boot.memory),
                "extra_options": options,
            },
            "actions": [
                {"deploy": {
                    "to": "tmpfs",
                    "timeout": {"minutes": 10},
                    "images": {
                        "kernel": {"image_arg": f'-kernel {{kernel}} -append "{cmdline}"',
                                   "url": f"{base}/{cell.id}/kernel"},
                        "ramdisk": {"image_arg": "-initrd {ramdisk}",
                                    "url": f"{base}/{cell.id}/initramfs.cpio"},
                    },
                }},
                {"boot": {"method": "qemu", "media": "tmpfs",
                          "timeout": {"minutes": boot_minutes}}},
                {"test": {"timeout": {"minutes": boot_minutes}, "monitors": monitors}},
            ],
        }  # fmt: skip
        header = f"# kbulk plan {plan.plan_id}, cell {cell.id} (`kbulk plan --format lava`)\n"
        jobs[cell.id] = header + _yaml(job)
    return jobs


def _memory_mb(memory: str) -> int:
    units = {"M": 1, "G": 1024}
    number, unit = memory[:-1], memory[-1:].upper()
    if unit not in units or not number.isdigit():
        raise PlanError(f"boot.memory {memory!r}: LAVA needs a size in M or G")
    return int(number) * units[unit]
