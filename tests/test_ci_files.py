"""The CI files are proven, not examples: schema-valid (check-jsonschema's vendored
GitLab and GitHub schemas, offline), every job has a timeout, only the .deb and
ccache are cached, JUnit is published; and scripts/setup.sh installs what the
private apt state of `kbulk source` references."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.kernel.source import DebianFetcher
from harness.paths import REPO_ROOT

GITLAB = REPO_ROOT / "ci" / "gitlab-ci.yml"
GITHUB = REPO_ROOT / "ci" / "github-actions.yml"
SETUP = REPO_ROOT / "scripts" / "setup.sh"
# Worth caching: the pinned source package and ccache; not the 2 GB extracted
# tree, the apt lists or the build directories.
CACHED = {".kbulk-cache/apt/debs", ".kbulk-cache/ccache"}
# Keys of a .gitlab-ci.yml that are not jobs.
GITLAB_GLOBAL = {"variables", "default", "stages", "include", "workflow", "image", "cache"}


@pytest.mark.parametrize(
    ("path", "schema"), [(GITLAB, "vendor.gitlab-ci"), (GITHUB, "vendor.github-workflows")]
)
def test_schema_valid_offline(path: Path, schema: str) -> None:
    dead_proxy = "http://127.0.0.1:9"  # any network access would fail
    env = {**os.environ, "HTTP_PROXY": dead_proxy, "HTTPS_PROXY": dead_proxy}
    env.update(http_proxy=dead_proxy, https_proxy=dead_proxy)
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_schema_check_catches_a_broken_file(tmp_path: Path) -> None:
    """The check is not vacuous: an unknown job keyword is refused."""
    broken = tmp_path / "gitlab-ci.yml"
    broken.write_text(GITLAB.read_text() + "\nextra:\n  script: [true]\n  timeoutt: 1h\n")
    proc = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
         str(broken)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _gitlab_jobs() -> dict[str, dict[str, Any]]:
    data = _load(GITLAB)
    return {k: v for k, v in data.items() if k not in GITLAB_GLOBAL and not k.startswith(".")}


def test_gitlab_jobs_have_timeouts_junit_and_small_caches() -> None:
    jobs = _gitlab_jobs()
    assert {"tests", "plan", "kernel", "ab-report", "series-check"} <= set(jobs)
    for name, job in jobs.items():
        # a trigger job runs no script: its child pipeline's jobs have the timeouts
        # (test_child_pipelines_are_what_kbulk_plan_writes)
        assert job.get("timeout") or "trigger" in job, f"{name}: no timeout"
        for cache in job.get("cache", []):
            paths = {p.rstrip("/") for p in cache["paths"]}
            assert paths <= CACHED, f"{name} caches {paths - CACHED}"
    assert jobs["tests"]["artifacts"]["reports"]["junit"]
    assert "cache" not in _load(GITLAB)["default"]  # no whole-cache-dir default any more


def test_child_pipelines_are_what_kbulk_plan_writes(tmp_path: Path) -> None:
    """The trigger jobs run the plan job's artifacts, which `kbulk plan --format gitlab`
    writes; that child pipeline is schema-valid, every job has a timeout, only the .deb
    and ccache are cached, and its merge job publishes JUnit and summary.md."""
    jobs = _gitlab_jobs()
    written = {}
    for line in jobs["plan"]["script"]:
        args = line.split()
        if "plan" in args and "--format" in args:
            assert args[args.index("--format") + 1] == "gitlab", line
            written[args[args.index("-o") + 1]] = args[args.index("plan") + 1 : args.index("-o")]
    for name in ("kernel", "ab-report"):
        (include,) = jobs[name]["trigger"]["include"]
        assert include["job"] == "plan" and include["artifact"] in written
        assert include["artifact"] in jobs["plan"]["artifacts"]["paths"]
        assert jobs[name]["trigger"]["strategy"] == "depend"  # the child's failure is ours
    for artifact, args in written.items():
        child = tmp_path / artifact
        proc = subprocess.run(
            [sys.executable, "-m", "harness.cli", "plan", *args, "-o", str(child)],
            cwd=REPO_ROOT, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        check = subprocess.run(
            [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.gitlab-ci",
             str(child)], capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert check.returncode == 0, check.stdout + check.stderr
        data = yaml.safe_load(child.read_text())
        child_jobs = {k: v for k, v in data.items() if k not in GITLAB_GLOBAL}
        for name, job in child_jobs.items():
            assert job["timeout"], f"{artifact}: {name}: no timeout"
            for cache in job.get("cache", []):
                assert {p.rstrip("/") for p in cache["paths"]} <= CACHED, (artifact, name)
        merge = child_jobs["merge"]
        assert merge["artifacts"]["reports"]["junit"] == "merged/junit.xml"
        assert "merged/" in merge["artifacts"]["paths"] and merge["when"] == "always"
        assert 'KBULK_CACHE="${KBULK_CACHE:-$PWD/.kbulk-cache}"' in " ".join(
            data["default"]["before_script"]
        )


def test_gitlab_cache_dir_is_the_jobs_own_directory() -> None:
    """Cache paths must be inside the project directory; KBULK_CACHE comes from the
    job's working directory (a shell runner's CI_PROJECT_DIR can be elsewhere)."""
    data = _load(GITLAB)
    assert 'export KBULK_CACHE="$PWD/.kbulk-cache"' in data["default"]["before_script"]
    assert "CI_PROJECT_DIR" not in GITLAB.read_text()


def test_github_jobs_have_timeouts_junit_and_small_caches() -> None:
    jobs = _load(GITHUB)["jobs"]
    assert list(jobs) == ["tests", "plan", "cell", "merge"]
    for name, job in jobs.items():
        assert job.get("timeout-minutes"), f"{name}: no timeout"
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/cache@"):
                assert step["with"]["path"] in CACHED, f"{name} caches {step['with']['path']}"
    for name in ("tests", "merge"):
        uses = [step.get("uses", "") for step in jobs[name]["steps"]]
        assert any(u.startswith("mikepenz/action-junit-report@") for u in uses), name
    runs = [s.get("run", "") for s in jobs["cell"]["steps"]]
    assert any("kbulk run --plan plan.json --cell" in r for r in runs)
    assert "matrix.cell" not in " ".join(runs)  # the cell ID goes through $CELL
    assert jobs["cell"]["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    merge_steps = jobs["merge"]["steps"]
    download = next(s for s in merge_steps if s.get("uses", "").startswith("actions/download"))
    assert download["with"] == {"pattern": "cell-*", "merge-multiple": True, "path": "cells"}
    assert any("kbulk merge cells/* --out merged" in s.get("run", "") for s in merge_steps)
    assert any("GITHUB_STEP_SUMMARY" in s.get("run", "") for s in merge_steps)


def _setup_packages() -> list[str]:
    """scripts/setup.sh's APT_PACKAGES array, as bash sees it."""
    array = re.search(r"^APT_PACKAGES=\(.*?^\)", SETUP.read_text(), re.MULTILINE | re.DOTALL)
    assert array, "no APT_PACKAGES=( ... ) in setup.sh"
    out = subprocess.run(
        ["bash", "-c", array.group(0) + '\nprintf "%s\\n" "${APT_PACKAGES[@]}"'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.split()


def test_setup_installs_the_keyring_the_private_apt_state_is_signed_by(tmp_path: Path) -> None:
    """The keyring is read from the sources list `kbulk source` writes, and its package
    found the way apt would (dpkg -S on a Debian host; the Debian naming convention
    <package>.gpg otherwise), so a change in source.py shows up here."""
    fetcher = DebianFetcher(tmp_path, lambda line: None)
    fetcher._prepare("sid")
    sources = (tmp_path / "apt" / "sid" / "sources").read_text()
    keyrings = re.findall(r"signed-by=([^\]\s]+)", sources)
    assert keyrings, sources
    packages = set(_setup_packages())
    for keyring in keyrings:
        owner = Path(keyring).stem  # /usr/share/keyrings/<package>.gpg
        if shutil.which("dpkg") and Path(keyring).exists():
            out = subprocess.run(["dpkg", "-S", keyring], capture_output=True, text=True)
            if out.returncode == 0:
                owner = out.stdout.split(":", 1)[0]
        assert owner in packages, f"setup.sh does not install {owner} (for {keyring})"
