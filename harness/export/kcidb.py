"""A result directory as a KCIDB I/O document (schema 5.3), validated with kcidb-io.

One checkout per source + series (``patchset_hash`` as KCIDB's submitter guide
defines it), one build per (arch, kernel, config), and tests: the run as a whole
(path ``""``), every KTAP node (``kunit.<suite>.<case>``; a test module's cases as
``<module>.<case>``), and every numeric module metric as a DONE test whose
``number`` holds the value (``kbulk_bench.order0_batch64.ns_per_page``). IDs are
``<origin>:<run id>...``. Submitting the document is the user's (``kcidb-submit``
needs their credentials); this only writes it, and only once kcidb-io accepts it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.analysis.ktap import Metric, TestNode, TestStatus
from harness.errors import HarnessError
from harness.fsutil import atomic_write_text
from harness.kernel.patches import series_digest
from harness.record.meta import RunMeta, SourceMeta
from harness.record.run import ArchRun
from harness.record.status import RunStatus
from harness.record.store import ResultDir
from harness.report.headlines import BENCH, STRESS

__all__ = [
    "ExportOptions",
    "KcidbError",
    "KcidbInputError",
    "build_document",
    "export",
    "patchset_hash",
    "validate",
]

SCHEMA_MAJOR, SCHEMA_MINOR = 5, 3
ORIGIN_RE = re.compile(r"^[a-z0-9_]+$")  # KCIDB's origin pattern
_NOT_PATH = re.compile(r"[^A-Za-z0-9_-]")  # outside a KCIDB test path component
_EXCERPT_MAX = 16384
KCIDB_INSTALL = "pip install 'kbulk-harness[kcidb]' (or run scripts/setup.sh)"

# KTAP node status -> KCIDB status. CRASH nodes (planned, never reported) are
# ERROR: they did not complete and the code's status is unknown -- except the
# node a crash report names, which is FAIL (the kernel crashed running it).
_TEST_STATUS = {
    TestStatus.PASS: "PASS",
    TestStatus.FAIL: "FAIL",
    TestStatus.SKIP: "SKIP",
    TestStatus.XFAIL: "SKIP",  # a SKIP directive saying "XFAIL": no verdict on the code
    TestStatus.NO_TESTS: "SKIP",
    TestStatus.CRASH: "ERROR",
}
# Run status -> the status of the run's root test (path ""). Runs stopped before a
# kernel booted have no tests; their build (or checkout) carries the verdict.
_RUN_STATUS = {
    RunStatus.PASS: "PASS",
    RunStatus.TEST_FAILURE: "FAIL",
    RunStatus.CRASH: "FAIL",
    RunStatus.TIMEOUT: "ERROR",  # a hang: the tests did not complete
    RunStatus.NO_TESTS: "MISS",
    RunStatus.INFRA_ERROR: "MISS",
}
_BUILD_STATUS = {RunStatus.BUILD_FAILURE: "FAIL", RunStatus.CONFIG_ERROR: "ERROR"}
_UNIT_SUFFIXES = (("_ns", "ns"), ("_us", "us"), ("_ms", "ms"))  # p50_ns, setup_ms


class KcidbError(HarnessError):
    """The export cannot be made: kcidb-io missing, or the document is invalid."""

    status = RunStatus.INFRA_ERROR


class KcidbInputError(KcidbError):
    """The result directory or an option is unusable (a usage error: exit 2)."""


@dataclass(frozen=True)
class ExportOptions:
    origin: str = "kbulk"
    logs_url: str | None = None  # where the result directory is published (log_url)
    patches_url: str | None = None  # where the series' patch files are (patchset_files)


def patchset_hash(patch_sha256: Sequence[str]) -> str:
    """KCIDB's patchset hash: sha256 over each patch's sha256 followed by a newline,
    in application order ("" with no patches)."""
    if not patch_sha256:
        return ""
    return hashlib.sha256("".join(f"{h}\n" for h in patch_sha256).encode()).hexdigest()


def export(result_dir: Path, out: Path | None, options: ExportOptions) -> dict[str, Any]:
    """Build the document for ``result_dir``, validate it, then write it (None: no file)."""
    if not ORIGIN_RE.match(options.origin):
        raise KcidbInputError(f"--origin {options.origin!r}: must match [a-z0-9_]+ (KCIDB)")
    for flag, url in (("--logs-url", options.logs_url), ("--patches-url", options.patches_url)):
        if url is not None and not (urlsplit(url).scheme and urlsplit(url).netloc):
            raise KcidbInputError(f"{flag} {url!r}: needs an absolute URL (https://host/...)")
    try:
        results = ResultDir.open(result_dir)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KcidbInputError(f"{result_dir}: not a readable result directory: {e}") from e
    doc = build_document(results.meta, results.runs, options, default_id=result_dir.name)
    validate(doc)
    if out is not None:
        atomic_write_text(out, json.dumps(doc, indent=2) + "\n")
    return doc


def validate(doc: Mapping[str, Any]) -> None:
    """Raise KcidbError unless kcidb-io accepts ``doc`` as schema 5.3."""
    try:
        schema: Any = importlib.import_module("kcidb_io").schema.V5_3
        jsonschema: Any = importlib.import_module("jsonschema")
    except ImportError as e:
        raise KcidbError(f"kcidb-io is not installed, cannot validate: {KCIDB_INSTALL}") from e
    try:
        schema.validate_exactly(doc)
    except jsonschema.exceptions.ValidationError as e:
        raise KcidbError(f"KCIDB document invalid at {e.json_path}: {e.message}") from e


def build_document(
    meta: RunMeta,
    runs: Sequence[ArchRun],
    options: ExportOptions,
    default_id: str = "run",
) -> dict[str, Any]:
    """The KCIDB document (not yet validated) for one result directory's runs."""
    return _Exporter(meta, options, meta.run_id or default_id).document(runs)


class _Exporter:
    def __init__(self, meta: RunMeta, options: ExportOptions, run_id: str) -> None:
        self.meta = meta
        self.options = options
        self.prefix = f"{options.origin}:{run_id}"
        self.checkouts: dict[str, dict[str, Any]] = {}
        self.builds: dict[str, dict[str, Any]] = {}
        self.tests: list[dict[str, Any]] = []
        self.test_ids: set[str] = set()

    def document(self, runs: Sequence[ArchRun]) -> dict[str, Any]:
        for run in runs:
            checkout = self.checkout(run)
            if run.kernel == "unknown":  # the source or the series failed: nothing built
                if run.status is RunStatus.PATCH_FAILURE:
                    checkout["valid"] = False
                continue
            build_id = self.build(run, checkout["id"])
            if run.status not in _BUILD_STATUS:
                self.run_tests(run, build_id)
        return {
            "version": {"major": SCHEMA_MAJOR, "minor": SCHEMA_MINOR},
            "checkouts": list(self.checkouts.values()),
            "builds": list(self.builds.values()),
            "tests": self.tests,
        }

    # ------------------------------------------------------------------ checkout

    def checkout(self, run: ArchRun) -> dict[str, Any]:
        if run.kernel == "unknown":  # stopped before the kernel existed: patches unknown
            key = "unknown"
        else:
            key = "base" if run.series is None else f"series-{run.series}"
        if key in self.checkouts:
            return self.checkouts[key]
        source = self.meta.source or SourceMeta("?", "?")
        obj: dict[str, Any] = {
            "id": f"{self.prefix}.{key}",
            "origin": self.options.origin,
            "comment": f"Linux {source.version} ({source.origin})",
            "misc": {"kbulk_kernel": run.kernel, "source_sha256": source.sha256},
        }
        if started := self.meta.started:
            obj["start_time"] = started
        if key == "unknown":
            obj["comment"] += f": {run.message}" if run.message else ""
        elif run.series is None:
            obj["patchset_hash"] = ""
        else:
            names, hashes = self.patches(run.series)
            obj["patchset_hash"] = patchset_hash(hashes)
            obj["comment"] += f" + {len(names)} patches"
            series_sha256 = self.meta.series.sha256 if self.meta.series else None
            obj["misc"].update(patches=names, series_sha256=series_sha256)
            if self.options.patches_url:
                base = self.options.patches_url.rstrip("/")
                obj["patchset_files"] = [{"name": n, "url": f"{base}/{n}"} for n in names]
        obj["misc"] = {k: v for k, v in obj["misc"].items() if v is not None}
        if key != "unknown":
            obj["valid"] = True
        self.checkouts[key] = obj
        return obj

    def patches(self, label: str) -> tuple[list[str], list[str]]:
        """The series' patch names and sha256s, from meta.series (recorded since
        results.json carried them), else re-read from the series directory if its
        files still hash to the digest the run recorded."""
        series = self.meta.series
        if series is None or not (series.sha256 or "").startswith(label):
            raise KcidbInputError(
                f"the results record no patch list for series {label}: cannot compute "
                "the KCIDB patchset_hash"
            )
        names = list(series.patches)
        if hashes := series.patch_sha256:
            return names, list(hashes)
        directory = Path(str(series.dir))
        files = [directory / n for n in names]
        try:
            same = series_digest(files) == series.sha256
        except OSError:
            same = False
        if not same:
            raise KcidbInputError(
                f"results.json predates per-patch hashes and {directory} no longer holds "
                f"the patches that were applied (series {label}): cannot compute the "
                "KCIDB patchset_hash"
            )
        return names, [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]

    # --------------------------------------------------------------------- build

    def build(self, run: ArchRun, checkout_id: str) -> str:
        config = (run.build.config_digest if run.build else None) or "default"
        build_id = f"{self.prefix}.{run.arch}.{run.kernel}.{config[:12]}"
        if build_id in self.builds:
            return build_id
        obj: dict[str, Any] = {
            "id": build_id,
            "origin": self.options.origin,
            "checkout_id": checkout_id,
            "architecture": run.arch,
            "config_name": f"{self.meta.spec_name or 'kbulk'}-{config[:12]}",
            "status": self._build_status(run),
        }
        if "build" in run.durations:
            obj["duration"] = run.durations["build"]
        misc: dict[str, Any] = {"kbulk_status": str(run.status)}
        if run.build is not None:
            if run.build.make_argv:
                obj["command"] = run.build.reproducer
            misc.update(warnings=run.build.warnings, errors=run.build.errors)
            if run.build.image_sha256:
                misc["image_sha256"] = run.build.image_sha256
            self._log_url(obj, misc, run.build.log)
        if run.status in _BUILD_STATUS and run.message:
            obj["log_excerpt"] = run.message[-_EXCERPT_MAX:]
        obj["misc"] = misc
        self.builds[build_id] = obj
        return build_id

    @staticmethod
    def _build_status(run: ArchRun) -> str:
        if run.status in _BUILD_STATUS:
            return _BUILD_STATUS[run.status]
        built = run.build is not None and run.build.image is not None
        return "PASS" if built or run.boot is not None or run.ktap is not None else "MISS"

    def _log_url(self, obj: dict[str, Any], misc: dict[str, Any], path: str | None) -> None:
        """log_url for a file inside the result directory, when its URL base is known;
        the relative path goes into misc either way (log_url must be an absolute URI)."""
        if not path or Path(path).is_absolute():
            return
        misc["log_path"] = path
        if self.options.logs_url:
            obj["log_url"] = f"{self.options.logs_url.rstrip('/')}/{path}"

    # --------------------------------------------------------------------- tests

    def run_tests(self, run: ArchRun, build_id: str) -> None:
        slot = f"{run.ab.variant}-r{run.ab.repetition}" if run.ab else "run"
        base_id = f"{build_id}:{slot}"
        root: dict[str, Any] = {
            "status": _RUN_STATUS.get(run.status, "ERROR"),
            "comment": run.message or str(run.status),
        }
        if "boot_to_results" in run.durations:
            root["duration"] = run.durations["boot_to_results"]
        misc: dict[str, Any] = {"kbulk_status": str(run.status)}
        if run.crashes:
            misc["crashes"] = [f"{c.kind}: {c.title}" for c in run.crashes]
            excerpt = "\n".join(line for c in run.crashes for line in c.excerpt)
            if excerpt:
                root["log_excerpt"] = excerpt[-_EXCERPT_MAX:]
        self._log_url(root, misc, run.console_log)
        root["misc"] = misc
        if run.boot is not None:
            root["environment"] = {
                "comment": f"QEMU {run.arch} ({run.boot.accel or 'unknown accelerator'})",
                "misc": {
                    k: v
                    for k, v in {
                        "accelerator": run.boot.accel,
                        "memory": run.boot.memory,
                        "smp": run.boot.smp,
                        "cmdline": run.boot.cmdline,
                    }.items()
                    if v is not None
                },
            }
        self.add_test(base_id, build_id, [], root)
        modules = {STRESS, BENCH, *run.module_steps}
        crashed = {c.test for c in run.crashes if c.test}
        if run.ktap is not None:
            for path, node in run.ktap.walk():
                # a planned test that never reported has no name: "#<number>", as in JUnit
                names = [*path[:-1], path[-1] or f"#{node.number}"]
                self.add_test(
                    base_id, build_id, _path(names, modules), self._node(node, names, crashed)
                )
        for metric in run.metrics:
            for path, test in _metric_tests(metric, modules):
                self.add_test(base_id, build_id, path, test)

    @staticmethod
    def _node(node: TestNode, names: list[str], crashed: set[str]) -> dict[str, Any]:
        dotted = ".".join(names)
        status = _TEST_STATUS[node.status]
        if node.status is TestStatus.CRASH and any(
            c == dotted or c.startswith(dotted + ".") for c in crashed
        ):
            status = "FAIL"
        obj: dict[str, Any] = {"status": status}
        if node.duration is not None and math.isfinite(node.duration):
            obj["duration"] = node.duration
        misc: dict[str, Any] = {}
        if node.directive:
            misc["directive"] = node.directive
        if any(_NOT_PATH.search(n) for n in names):
            misc["ktap_path"] = dotted
        if misc:
            obj["misc"] = misc
        return obj

    def add_test(self, base_id: str, build_id: str, path: list[str], obj: dict[str, Any]) -> None:
        dotted = ".".join(path)
        test_id, n = f"{base_id}:{dotted}", 1
        while test_id in self.test_ids:  # a metric line printed more than once
            n += 1
            test_id = f"{base_id}:{dotted}#{n}"
        self.test_ids.add(test_id)
        self.tests.append(
            {"id": test_id, "origin": self.options.origin, "build_id": build_id, "path": dotted}
            | obj
        )


def _component(name: str) -> str:
    return _NOT_PATH.sub("_", name) or "_"


def _path(names: Sequence[str], modules: set[str]) -> list[str]:
    """KCIDB path of a KTAP node: kunit.<suite>.<case>, or <module>.<case>."""
    parts = [_component(n) for n in names]
    return parts if names and names[0] in modules else ["kunit", *parts]


def _unit(key: str) -> str | None:
    if key.startswith("ns_per_"):  # ns_per_page
        return "ns"
    return next((unit for suffix, unit in _UNIT_SUFFIXES if key.endswith(suffix)), None)


def _metric_tests(metric: Metric, modules: set[str]) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """One DONE test per numeric value of a ``kbulk-metric`` line; its text values in misc.

    The line's own ``test=`` name sits under the suite that printed it (setup and
    env lines are printed inside the first case): ``kbulk_stress.env.nr_cpus``.
    """
    names = metric.test_path
    base = list(names) if names and names[-1] == metric.test else [*names[:1], metric.test]
    path = _path(base, modules)
    text = {k: v for k, v in metric.values.items() if isinstance(v, str)}
    for key, value in metric.values.items():
        if isinstance(value, str | bool) or not math.isfinite(value):
            continue
        number: dict[str, Any] = {"value": value}
        if unit := _unit(key):
            number["unit"] = unit
        test: dict[str, Any] = {"status": "DONE", "number": number}
        if text:
            test["misc"] = dict(text)
        yield [*path, _component(key)], test
