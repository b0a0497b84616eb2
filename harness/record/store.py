"""Result model of a harness invocation and its writers (results.json, JUnit XML).

One invocation boots one or more kernels on one or more architectures; each boot is
an :class:`ArchRun` with a KernelCI-like :class:`RunStatus`. Everything is written
atomically (temp file in the same directory + ``os.replace``) into a
:class:`ResultDir` that is created fresh for every invocation and never reused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import os
import platform
import re
import secrets
import socket
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from harness.analysis.ktap import Counts, KtapDocument, Metric, TestNode, TestStatus

__all__ = [
    "CRASH_KINDS",
    "EXIT_CODES",
    "NON_FATAL_KINDS",
    "SCHEMA_VERSION",
    "SEVERITY",
    "ArchRun",
    "CrashReport",
    "ResultDir",
    "RunStatus",
    "atomic_write_bytes",
    "atomic_write_text",
    "build_junit",
    "default_meta",
    "exit_code",
    "load_json",
    "status_from_tests",
    "worst",
    "write_json",
    "write_junit",
]

SCHEMA_VERSION = 1
CONSOLE_TAIL_LINES = 100


class RunStatus(enum.StrEnum):
    """Outcome of one (arch, kernel) run, KernelCI-like."""

    PASS = "pass"  # all tests passed (skips ok)
    TEST_FAILURE = "fail"  # kernel ran, some test failed
    CRASH = "crash"  # kernel oops/panic/BUG/KASAN during the run
    TIMEOUT = "timeout"  # hang: overall or inactivity timeout
    BUILD_FAILURE = "build_failure"
    CONFIG_ERROR = "config_error"  # requested Kconfig symbols did not survive
    PATCH_FAILURE = "patch_failure"
    INFRA_ERROR = "infra_error"  # harness/host problem (missing tool, qemu failed to start)
    NO_TESTS = "no_tests"


# Distinct process exit codes; 2 is left to argparse usage errors.
EXIT_CODES: dict[RunStatus, int] = {
    RunStatus.PASS: 0,
    RunStatus.TEST_FAILURE: 1,
    RunStatus.CRASH: 3,
    RunStatus.TIMEOUT: 4,
    RunStatus.BUILD_FAILURE: 5,
    RunStatus.CONFIG_ERROR: 6,
    RunStatus.PATCH_FAILURE: 7,
    RunStatus.INFRA_ERROR: 8,
    RunStatus.NO_TESTS: 9,
}

# Least to most severe. A definite finding about the kernel outranks "unknown"
# (INFRA_ERROR), and a failure at an earlier stage outranks a later one because it
# prevented everything after it (patch < build < config < boot/crash < hang < tests).
SEVERITY: tuple[RunStatus, ...] = (
    RunStatus.PASS,
    RunStatus.NO_TESTS,
    RunStatus.INFRA_ERROR,
    RunStatus.TEST_FAILURE,
    RunStatus.TIMEOUT,
    RunStatus.CRASH,
    RunStatus.CONFIG_ERROR,
    RunStatus.BUILD_FAILURE,
    RunStatus.PATCH_FAILURE,
)

CRASH_KINDS = (
    "oops",
    "panic",
    "bug",
    "warning",
    "kasan",
    "kfence",
    "ubsan",
    "soft_lockup",
    "hard_lockup",
    "hung_task",
    "rcu_stall",
)
# Reports after which the kernel keeps running normally; alone they do not make
# a run CRASH (they are still listed in ArchRun.crashes and in JUnit output).
NON_FATAL_KINDS = frozenset({"warning", "ubsan"})


@dataclass
class CrashReport:
    """One kernel crash found in a console log."""

    kind: str  # one of CRASH_KINDS
    title: str  # the matching console line, e.g. "BUG: kernel NULL pointer dereference, ..."
    test: str | None  # dotted path (suite.case) of the KTAP test running then, if known
    line: int  # 1-based console line
    excerpt: list[str]  # console lines of the report ("cut here"/title .. end marker)
    decoded: list[str] | None = None  # decode_stacktrace.sh output if available


@dataclass
class ArchRun:
    """One boot of one kernel on one architecture."""

    arch: str
    kernel: str  # label, e.g. "v7.2.13+bulk-v1"
    status: RunStatus
    accelerator: str | None = None  # "kvm" / "tcg"
    ktap: KtapDocument | None = None
    crashes: list[CrashReport] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    console_log: str | None = None  # path relative to the run directory
    durations: dict[str, float] = field(default_factory=dict)  # build/boot/test seconds
    message: str = ""  # human explanation, e.g. first build error
    details: dict[str, Any] = field(default_factory=dict)


def worst(statuses: Iterable[RunStatus | ArchRun]) -> RunStatus:
    """Most severe status (see SEVERITY); NO_TESTS when nothing ran at all."""
    rank = {status: i for i, status in enumerate(SEVERITY)}
    found = [s.status if isinstance(s, ArchRun) else RunStatus(s) for s in statuses]
    return max(found, key=rank.__getitem__, default=RunStatus.NO_TESTS)


def exit_code(statuses: Iterable[RunStatus | ArchRun]) -> int:
    """Process exit code for a set of runs."""
    return EXIT_CODES[worst(statuses)]


def status_from_tests(doc: KtapDocument | None, crashes: Sequence[CrashReport] = ()) -> RunStatus:
    """RunStatus of a kernel that booted and ran to the end (timeouts are the caller's).

    Crash reports count unless their kind is in NON_FATAL_KINDS; a document that
    ended with tests still open (``complete`` False) means the kernel died.
    """
    if any(c.kind not in NON_FATAL_KINDS for c in crashes):
        return RunStatus.CRASH
    if doc is None:
        return RunStatus.NO_TESTS
    if doc.status is TestStatus.CRASH or not doc.complete:
        return RunStatus.CRASH
    if doc.status is TestStatus.FAIL:
        return RunStatus.TEST_FAILURE
    if doc.status is TestStatus.NO_TESTS:
        return RunStatus.NO_TESTS
    return RunStatus.PASS


# ------------------------------------------------------------------ atomic writes


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: readers see the old or the new file only."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    # Persist the rename itself; best effort (not supported everywhere).
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------- JSON


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def default_meta(argv: Sequence[str] | None = None, **extra: Any) -> dict[str, Any]:
    """Standard meta block: command line, host, start time; ``extra`` is merged in
    (source version, series hash, ...)."""
    meta: dict[str, Any] = {
        "command_line": list(sys.argv if argv is None else argv),
        "host": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "started": _utc_now(),
    }
    meta.update(extra)
    return meta


def _node_to_dict(node: TestNode) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": node.name,
        "status": str(node.status),
        "directive": node.directive,
        "diagnostics": list(node.diagnostics),
        "subtests": [_node_to_dict(sub) for sub in node.subtests],
    }
    optional = {
        "planned": node.planned,
        "first_line": node.first_line,
        "last_line": node.last_line,
        "number": node.number,
        "reported": str(node.reported) if node.reported is not None else None,
        "duration": node.duration,
        "warnings": list(node.warnings),
    }
    data.update({k: v for k, v in optional.items() if v not in (None, [])})
    return data


def _node_from_dict(data: Mapping[str, Any]) -> TestNode:
    reported = data.get("reported")
    return TestNode(
        name=str(data["name"]),
        status=TestStatus(data["status"]),
        directive=data.get("directive"),
        diagnostics=list(data.get("diagnostics", [])),
        subtests=[_node_from_dict(sub) for sub in data.get("subtests", [])],
        planned=data.get("planned"),
        first_line=data.get("first_line"),
        last_line=data.get("last_line"),
        number=data.get("number"),
        reported=TestStatus(reported) if reported is not None else None,
        duration=data.get("duration"),
        warnings=list(data.get("warnings", [])),
    )


def _doc_to_dict(doc: KtapDocument) -> dict[str, Any]:
    counts = doc.counts()
    return {
        "status": str(doc.status),
        "complete": doc.complete,
        "counts": {**counts.__dict__, "total": counts.total()},  # derived, for readers
        "warnings": list(doc.warnings),
        "root": _node_to_dict(doc.root),
    }


def _doc_from_dict(data: Mapping[str, Any]) -> KtapDocument:
    return KtapDocument(
        root=_node_from_dict(data["root"]),
        warnings=list(data.get("warnings", [])),
        complete=bool(data.get("complete", True)),
    )


def _crash_to_dict(crash: CrashReport) -> dict[str, Any]:
    return {
        "kind": crash.kind,
        "title": crash.title,
        "test": crash.test,
        "line": crash.line,
        "excerpt": list(crash.excerpt),
        "decoded": list(crash.decoded) if crash.decoded is not None else None,
    }


def _crash_from_dict(data: Mapping[str, Any]) -> CrashReport:
    decoded = data.get("decoded")
    return CrashReport(
        kind=str(data["kind"]),
        title=str(data["title"]),
        test=data.get("test"),
        line=int(data["line"]),
        excerpt=list(data.get("excerpt", [])),
        decoded=list(decoded) if decoded is not None else None,
    )


def _metric_to_dict(metric: Metric) -> dict[str, Any]:
    return {"test_path": list(metric.test_path), "test": metric.test, "values": dict(metric.values)}


def _metric_from_dict(data: Mapping[str, Any]) -> Metric:
    return Metric(
        test_path=list(data.get("test_path", [])),
        test=str(data["test"]),
        values=dict(data.get("values", {})),
    )


def _run_to_dict(run: ArchRun) -> dict[str, Any]:
    return {
        "arch": run.arch,
        "kernel": run.kernel,
        "status": str(run.status),
        "exit_code": EXIT_CODES[run.status],
        "accelerator": run.accelerator,
        "durations": dict(run.durations),
        "message": run.message,
        "console_log": run.console_log,
        "crashes": [_crash_to_dict(c) for c in run.crashes],
        "metrics": [_metric_to_dict(m) for m in run.metrics],
        "ktap": _doc_to_dict(run.ktap) if run.ktap is not None else None,
        "details": run.details,
    }


def _run_from_dict(data: Mapping[str, Any]) -> ArchRun:
    ktap = data.get("ktap")
    return ArchRun(
        arch=str(data["arch"]),
        kernel=str(data["kernel"]),
        status=RunStatus(data["status"]),
        accelerator=data.get("accelerator"),
        ktap=_doc_from_dict(ktap) if ktap is not None else None,
        crashes=[_crash_from_dict(c) for c in data.get("crashes", [])],
        metrics=[_metric_from_dict(m) for m in data.get("metrics", [])],
        console_log=data.get("console_log"),
        durations={str(k): float(v) for k, v in data.get("durations", {}).items()},
        message=str(data.get("message", "")),
        details=dict(data.get("details", {})),
    )


def results_document(runs: Sequence[ArchRun], meta: Mapping[str, Any]) -> dict[str, Any]:
    """The results.json content as a plain dict."""
    overall = worst(runs)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": _utc_now(),
        "meta": dict(meta),
        "summary": {
            "status": str(overall),
            "exit_code": EXIT_CODES[overall],
            "runs": [{"arch": r.arch, "kernel": r.kernel, "status": str(r.status)} for r in runs],
        },
        "runs": [_run_to_dict(run) for run in runs],
    }


def write_json(
    path: str | os.PathLike[str], runs: Sequence[ArchRun], meta: Mapping[str, Any]
) -> None:
    """Write results.json atomically (serialised fully before the file is touched).

    Values in ``details`` that JSON cannot represent are written as ``str()`` (so
    they do not round-trip exactly); NaN/inf in durations raise ValueError.
    """
    text = json.dumps(results_document(runs, meta), indent=2, allow_nan=False, default=str)
    atomic_write_text(path, text + "\n")


def load_json(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[ArchRun]]:
    """Read a results.json back into ``(meta, runs)``."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ValueError(f"{path}: unsupported results schema_version {version!r}")
    return dict(data.get("meta", {})), [_run_from_dict(r) for r in data.get("runs", [])]


# --------------------------------------------------------------------------- JUnit

# Characters XML 1.0 cannot carry at all (console logs contain ESC, NUL, ...).
_XML_INVALID_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    return _XML_INVALID_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _label(node: TestNode) -> str:
    if node.name:
        return node.name
    return f"#{node.number}" if node.number is not None else "#?"


def _failure_message(node: TestNode) -> str:
    for line in node.diagnostics:
        if "FAILED" in line or "failed" in line:
            return line.lstrip("# ").strip()
    return "test failed"


def _xfail_message(node: TestNode) -> str:
    reason = node.reason
    return reason if reason.upper().startswith("XFAIL") else f"XFAIL {reason}".rstrip()


def _crash_for(run: ArchRun, dotted: str) -> CrashReport | None:
    """The crash that most plausibly killed test ``dotted`` (exact, ancestor, any)."""
    for matches in (
        lambda c: c.test == dotted,
        lambda c: c.test is not None and dotted.startswith(c.test + "."),
        lambda c: c.test is None,
        lambda c: True,
    ):
        for crash in run.crashes:
            if matches(crash):
                return crash
    return None


def _crash_text(crash: CrashReport) -> str:
    lines = [crash.title, *crash.excerpt]
    if crash.decoded:
        lines += ["", "decoded:", *crash.decoded]
    return "\n".join(lines)


def _case_result(run: ArchRun, node: TestNode, dotted: str) -> Failure | Error | Skipped | None:
    match node.status:
        case TestStatus.FAIL:
            result: Failure | Error | Skipped = Failure(_xml_safe(_failure_message(node)), "fail")
            result.text = _xml_safe("\n".join(node.diagnostics)) or None
        case TestStatus.CRASH:
            crash = _crash_for(run, dotted)
            title = crash.title if crash else "no result line: kernel crashed or output ended"
            result = Error(_xml_safe(title), crash.kind if crash else "crash")
            result.text = _xml_safe(_crash_text(crash)) if crash else None
        case TestStatus.SKIP:
            result = Skipped(_xml_safe(node.reason or "skipped"))
        case TestStatus.XFAIL:
            result = Skipped(_xml_safe(_xfail_message(node)))
        case TestStatus.NO_TESTS:
            result = Skipped("no tests run")
        case _:
            return None
    return result


def _testcase(run: ArchRun, node: TestNode, classname: str, dotted: str, name: str) -> TestCase:
    case = TestCase(_xml_safe(name), _xml_safe(classname), node.duration)
    result = _case_result(run, node, dotted)
    if result is not None:
        case.result = [result]
    if node.diagnostics and node.status in (TestStatus.FAIL, TestStatus.CRASH):
        case.system_out = _xml_safe("\n".join(node.diagnostics))
    return case


def _children_counts(node: TestNode) -> Counts:
    total = Counts()
    for sub in node.subtests:
        total.add(sub.counts())
    return total


def _suite_own_case(run: ArchRun, node: TestNode, classname: str, dotted: str) -> TestCase | None:
    """A testcase for a suite whose own outcome is not visible in any of its cases.

    Mirrors TestNode.counts(): a "not ok" suite with passing cases, a suite that
    crashed after its cases finished, or a suite that ran no tests.
    """
    children = _children_counts(node)
    own_failure = node.status is TestStatus.FAIL and not (children.failed or children.crashed)
    own_crash = node.status is TestStatus.CRASH and not children.crashed
    if not (own_failure or own_crash or node.status is TestStatus.NO_TESTS):
        return None
    as_leaf = TestNode(
        name=node.name,
        status=node.status,
        directive=node.directive,
        diagnostics=node.diagnostics,
        number=node.number,
    )
    return _testcase(run, as_leaf, classname, dotted, "(suite)")


def _new_suite(name: str, run: ArchRun) -> TestSuite:
    suite = TestSuite(_xml_safe(name))
    for key, value in (
        ("arch", run.arch),
        ("kernel", run.kernel),
        ("run_status", str(run.status)),
        ("accelerator", run.accelerator or ""),
    ):
        suite.add_property(key, _xml_safe(value))
    return suite


def _flatten(
    run: ArchRun, node: TestNode, labels: list[str], names: list[str]
) -> Iterator[TestSuite]:
    """One <testsuite> per KTAP suite, nested suites flattened with dotted names.

    ``labels`` is the display path including the run label (suite/class names);
    ``names`` the raw KTAP name path (matched against CrashReport.test).
    """
    classname = ".".join(labels)
    suite = _new_suite(classname, run)
    cases = 0
    nested: list[TestNode] = []
    for child in node.subtests:
        if child.is_leaf:
            dotted = ".".join([*names, child.name])
            suite.add_testcase(_testcase(run, child, classname, dotted, _label(child)))
            cases += 1
        else:
            nested.append(child)
    if own := _suite_own_case(run, node, classname, ".".join(names)):
        suite.add_testcase(own)
        cases += 1
    if cases:
        yield suite
    for child in nested:
        yield from _flatten(run, child, [*labels, _label(child)], [*names, child.name])


def _console_excerpt(run: ArchRun, base: Path | None) -> str | None:
    if run.crashes:
        return "\n\n".join(_crash_text(c) for c in run.crashes)
    if base is None or not run.console_log:
        return None
    path = base / run.console_log
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            tail = deque(fh, maxlen=CONSOLE_TAIL_LINES)
    except OSError:
        return None
    return "".join(tail).rstrip("\n")


_RUN_ERRORS = frozenset(
    {
        RunStatus.CRASH,
        RunStatus.TIMEOUT,
        RunStatus.BUILD_FAILURE,
        RunStatus.CONFIG_ERROR,
        RunStatus.PATCH_FAILURE,
        RunStatus.INFRA_ERROR,
        RunStatus.NO_TESTS,
    }
)


def _run_suite(run: ArchRun, label: str, base: Path | None) -> TestSuite:
    """The single testcase standing for a run that produced no (or not all) tests."""
    name = f"{label}.run"
    suite = _new_suite(name, run)
    total = sum(run.durations.values()) if run.durations else None
    case = TestCase(_xml_safe(run.kernel or "run"), _xml_safe(name), total)
    if run.status in _RUN_ERRORS:
        error = Error(_xml_safe(run.message or f"run status: {run.status}"), str(run.status))
        error.text = _xml_safe("\n".join([run.message, *(c.title for c in run.crashes)]).strip())
        case.result = [error]
    if excerpt := _console_excerpt(run, base):
        case.system_out = _xml_safe(excerpt)
    suite.add_testcase(case)
    return suite


def _run_labels(runs: Sequence[ArchRun]) -> list[str]:
    # "<arch>" normally; "<arch>@<kernel>" when one arch has several kernels, so that
    # suite names stay unique (JUnit consumers merge equal names).
    per_arch: dict[str, int] = {}
    for run in runs:
        per_arch[run.arch] = per_arch.get(run.arch, 0) + 1
    labels = []
    for run in runs:
        label = run.arch if per_arch[run.arch] == 1 else f"{run.arch}@{run.kernel}"
        if run.details.get("repetition") is not None:
            label += f"#r{run.details['repetition']}"
        labels.append(label)
    return labels


def _suites_for_run(run: ArchRun, label: str, base: Path | None) -> list[TestSuite]:
    tests = run.ktap.root.subtests if run.ktap is not None else []
    suites: list[TestSuite] = []
    top_leaves = [t for t in tests if t.is_leaf]  # e.g. kselftest programs
    if top_leaves:
        suite = _new_suite(label, run)
        for leaf in top_leaves:
            suite.add_testcase(_testcase(run, leaf, label, leaf.name, _label(leaf)))
        suites.append(suite)
    for test in tests:
        if not test.is_leaf:
            suites.extend(_flatten(run, test, [label, _label(test)], [test.name]))
    cases = [case for suite in suites for case in suite]
    has_error = any(isinstance(r, Error) for case in cases for r in case.result)
    if not cases or (run.status in _RUN_ERRORS and not has_error):
        suites.append(_run_suite(run, label, base))
    return suites


def build_junit(
    runs: Sequence[ArchRun], *, run_dir: str | os.PathLike[str] | None = None
) -> JUnitXml:
    """JUnit tree for ``runs``: one flat <testsuite> per (run, KTAP suite).

    Nested KTAP suites (e.g. parameterised cases) are *flattened* into sibling
    <testsuite name="<arch>.<suite>.<case>"> elements rather than nested
    <testsuite>s: Jenkins, GitLab and most GitHub report actions ignore or
    mis-count nested suites, while dotted flat names render everywhere and keep
    the hierarchy readable. ``run_dir`` locates ``console_log`` for excerpts.
    """
    base = Path(run_dir) if run_dir is not None else None
    xml = JUnitXml()
    for run, label in zip(runs, _run_labels(runs), strict=True):
        for suite in _suites_for_run(run, label, base):
            xml.append(suite)  # not add_testsuite(): that merges equal names, O(n^2)
    xml.update_statistics()
    return xml


def _pretty_xml(raw: bytes) -> bytes:
    # junitparser may be backed by lxml or ElementTree; re-parse to indent portably.
    element = ET.fromstring(raw)
    ET.indent(element)
    return ET.tostring(element, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(
    path: str | os.PathLike[str],
    runs: Sequence[ArchRun],
    *,
    run_dir: str | os.PathLike[str] | None = None,
) -> None:
    """Write JUnit XML atomically; console excerpts are read relative to ``run_dir``
    (default: the directory of ``path``)."""
    target = Path(path)
    xml = build_junit(runs, run_dir=run_dir if run_dir is not None else target.parent)
    atomic_write_bytes(target, _pretty_xml(xml.tostring()))


# ----------------------------------------------------------------------- ResultDir

_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_+@-][A-Za-z0-9_.+@-]*$")


def _component(value: str, what: str) -> str:
    if not _COMPONENT_RE.match(value):
        raise ValueError(f"invalid {what} for a results path: {value!r}")
    return value


class ResultDir:
    """``results/<UTC timestamp>-<short id>/`` for one invocation; never reused.

    results.json is rewritten (atomically) after every :meth:`record`, so runs
    already finished survive if a later architecture takes the harness down.
    """

    RESULTS_JSON = "results.json"
    JUNIT_XML = "junit.xml"

    def __init__(self, path: Path, meta: dict[str, Any], runs: list[ArchRun]) -> None:
        self.path = path
        self.meta = meta
        self.runs = runs

    @classmethod
    def create(
        cls,
        base: str | os.PathLike[str] = "results",
        *,
        meta: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> ResultDir:
        """Make a new directory with ``os.mkdir`` (atomic, fails if it exists).

        An explicit ``run_id`` that already exists raises FileExistsError; a random
        one is redrawn on the (unlikely) collision.
        """
        root = Path(base)
        root.mkdir(parents=True, exist_ok=True)
        stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        for _ in range(8):
            short_id = _component(run_id, "run id") if run_id else secrets.token_hex(3)
            path = root / f"{stamp}-{short_id}"
            try:
                os.mkdir(path)
            except FileExistsError:
                if run_id:
                    raise
                continue
            info = {**(meta or {}), "run_id": path.name, "created": _utc_now(), "complete": False}
            result_dir = cls(path, info, [])
            result_dir.save()
            return result_dir
        raise FileExistsError(f"could not create a fresh results directory under {root}")

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ResultDir:
        """An existing result directory (for compare/report commands)."""
        directory = Path(path)
        meta, runs = load_json(directory / cls.RESULTS_JSON)
        return cls(directory, meta, runs)

    @property
    def results_json(self) -> Path:
        return self.path / self.RESULTS_JSON

    @property
    def junit_xml(self) -> Path:
        return self.path / self.JUNIT_XML

    def arch_dir(self, arch: str) -> Path:
        directory = self.path / _component(arch, "arch")
        directory.mkdir(exist_ok=True)
        return directory

    def arch_path(self, arch: str, name: str) -> Path:
        """Path of a per-arch file such as ``<arch>/console.log``."""
        return self.arch_dir(arch) / _component(name, "file name")

    def console_path(self, arch: str) -> Path:
        return self.arch_path(arch, "console.log")

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to this directory, as stored in ArchRun.console_log."""
        return Path(path).resolve().relative_to(self.path.resolve()).as_posix()

    def record(self, run: ArchRun) -> None:
        """Add or replace the run for (arch, kernel, repetition); rewrite results.json."""

        def key(r: ArchRun) -> tuple[str, str, object]:
            # A/B runs repeat the same (arch, kernel): the repetition tells them apart.
            return (r.arch, r.kernel, r.details.get("repetition"))

        self.runs = [r for r in self.runs if key(r) != key(run)] + [run]
        self.save()

    def save(self) -> None:
        self.meta["updated"] = _utc_now()
        write_json(self.results_json, self.runs, self.meta)

    def finish(self) -> RunStatus:
        """Mark complete, write results.json and junit.xml; return the overall status."""
        self.meta["complete"] = True
        self.meta["finished"] = _utc_now()
        self.save()
        write_junit(self.junit_xml, self.runs, run_dir=self.path)
        return worst(self.runs)
