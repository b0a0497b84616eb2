"""results.json (schema version 2, with a reader for version 1) and the result directory.

Everything is written atomically (temp file in the same directory + ``os.replace``)
into a :class:`ResultDir` that is created fresh for every invocation and never
reused. Version 1 files (an untyped ``details`` dict per run) are translated into
the typed record on load, so old result directories still compare.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from harness.analysis.ktap import KtapDocument, Metric, TestNode, TestStatus
from harness.fsutil import atomic_write_text, fresh_dir
from harness.record.junit import write_junit
from harness.record.meta import RunMeta, utc_now
from harness.record.run import AbSlot, ArchRun, BootInfo, BuildInfo, CrashReport, MachineInfo
from harness.record.schema import ResultsFormatError, check_document
from harness.record.status import (
    EXIT_CODES,
    Accel,
    CrashKind,
    ExitReason,
    RunStatus,
    Variant,
    worst,
)

__all__ = [
    "SCHEMA_VERSION",
    "ResultDir",
    "RunMeta",
    "default_meta",
    "load_json",
    "results_document",
    "write_json",
]

SCHEMA_VERSION = 2


def default_meta(argv: Sequence[str] | None = None) -> RunMeta:
    """Standard meta block: command line, host, start time (callers fill in the rest)."""
    return RunMeta.create(argv)


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
        "kind": str(crash.kind),
        "title": crash.title,
        "test": crash.test,
        "line": crash.line,
        "excerpt": list(crash.excerpt),
        "decoded": list(crash.decoded) if crash.decoded is not None else None,
        "source": crash.source,
    }


def _crash_from_dict(data: Mapping[str, Any]) -> CrashReport:
    decoded = data.get("decoded")
    return CrashReport(
        kind=CrashKind(data["kind"]),
        title=str(data["title"]),
        test=data.get("test"),
        line=int(data["line"]),
        excerpt=list(data.get("excerpt", [])),
        decoded=list(decoded) if decoded is not None else None,
        source=data.get("source"),
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
        "series": run.series,
        "status": str(run.status),
        "exit_code": EXIT_CODES[run.status],
        "accelerator": run.accelerator,  # derived from boot.accel, for readers
        "durations": dict(run.durations),
        "message": run.message,
        "console_log": run.console_log,
        "build": asdict(run.build) if run.build is not None else None,
        "boot": asdict(run.boot) if run.boot is not None else None,
        "ab": asdict(run.ab) if run.ab is not None else None,
        "module_steps": dict(run.module_steps),
        "crashes": [_crash_to_dict(c) for c in run.crashes],
        "metrics": [_metric_to_dict(m) for m in run.metrics],
        "ktap": _doc_to_dict(run.ktap) if run.ktap is not None else None,
    }


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _build_from_dict(data: Mapping[str, Any]) -> BuildInfo:
    return BuildInfo(
        dir=str(data["dir"]),
        log=str(data["log"]),
        warnings=int(data.get("warnings", 0)),
        errors=int(data.get("errors", 0)),
        config_digest=data.get("config_digest"),
        image=data.get("image"),
        image_sha256=data.get("image_sha256"),
        make_argv=[str(a) for a in data.get("make_argv", [])],
    )


def _machine_from_dict(data: Mapping[str, Any]) -> MachineInfo:
    seconds = data.get("upload_seconds")
    return MachineInfo(
        name=str(data["name"]),
        host_key_fingerprint=str(data["host_key_fingerprint"]),
        boot_method=str(data.get("boot_method", "kexec")),
        own_kernel=data.get("own_kernel"),
        mem_available_kb=_opt_int(data.get("mem_available_kb")),
        lockdown=data.get("lockdown"),
        uploads={str(k): str(v) for k, v in data.get("uploads", {}).items()},
        upload_seconds=float(seconds) if seconds is not None else None,
        power_cycles=int(data.get("power_cycles", 0)),
        returned_to=data.get("returned_to"),
        interrupted=data.get("interrupted"),
        unusable=data.get("unusable"),
        pstore=data.get("pstore"),
        from_own_cmdline=[str(a) for a in data.get("from_own_cmdline", [])],
        pstore_files=[str(f) for f in data.get("pstore_files", [])],
        one_shot=data.get("one_shot"),
    )


def _boot_from_dict(data: Mapping[str, Any]) -> BootInfo:
    accel, reason = data.get("accel"), data.get("exit_reason")
    machine = data.get("machine")
    return BootInfo(
        accel=Accel(accel) if accel is not None else None,
        accel_reason=str(data.get("accel_reason", "")),
        qemu_argv=[str(a) for a in data.get("qemu_argv", [])],
        memory=data.get("memory"),
        smp=_opt_int(data.get("smp")),
        cmdline=data.get("cmdline"),
        icount=_opt_int(data.get("icount")),
        numa_nodes=_opt_int(data.get("numa_nodes")),
        exit_reason=ExitReason(reason) if reason is not None else None,
        qemu_exit_status=_opt_int(data.get("qemu_exit_status")),
        notes=[str(n) for n in data.get("notes", [])],
        machine=_machine_from_dict(machine) if machine is not None else None,
        qemu_stderr=[str(n) for n in data.get("qemu_stderr", [])],
    )


def _common(data: Mapping[str, Any]) -> dict[str, Any]:
    """The fields versions 1 and 2 share."""
    ktap = data.get("ktap")
    return {
        "arch": str(data["arch"]),
        "kernel": str(data["kernel"]),
        "status": RunStatus(data["status"]),
        "ktap": _doc_from_dict(ktap) if ktap is not None else None,
        "crashes": [_crash_from_dict(c) for c in data.get("crashes", [])],
        "metrics": [_metric_from_dict(m) for m in data.get("metrics", [])],
        "console_log": data.get("console_log"),
        "durations": {str(k): float(v) for k, v in data.get("durations", {}).items()},
        "message": str(data.get("message", "")),
    }


def _run_from_dict(data: Mapping[str, Any]) -> ArchRun:
    build, boot, ab = data.get("build"), data.get("boot"), data.get("ab")
    return ArchRun(
        **_common(data),
        series=data.get("series"),
        build=_build_from_dict(build) if build is not None else None,
        boot=_boot_from_dict(boot) if boot is not None else None,
        ab=AbSlot(Variant(ab["variant"]), int(ab["repetition"])) if ab is not None else None,
        module_steps={str(k): _opt_int(v) for k, v in data.get("module_steps", {}).items()},
    )


# ------------------------------------------------------------ schema version 1

_V1_SERIES = "+series-"  # v1 kernel labels of patched runs: v7.2.13+series-<label>
_V1_BUILD_DIR = re.compile(r"^build-[^-]+-([0-9a-f]{6,})$")


def _v1_after(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args[:-1] else None


def _v1_map(details: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = details.get(key)
    return value if isinstance(value, Mapping) else {}


def _v1_build(details: Mapping[str, Any]) -> BuildInfo | None:
    build = details.get("build")
    if not isinstance(build, Mapping):
        return None
    image = _v1_map(details, "image")
    digest = details.get("config_digest")
    if not digest:  # the oldest files: the config hash is in the build directory's name
        m = _V1_BUILD_DIR.match(Path(str(build.get("dir") or "")).name)
        digest = m.group(1) if m else None
    reproducer = build.get("reproducer") or ""
    return BuildInfo(
        dir=str(build.get("dir", "")),
        log=str(build.get("log", "")),
        warnings=int(build.get("warnings", 0)),
        errors=int(build.get("errors", 0)),
        config_digest=digest,
        image=image.get("path"),
        image_sha256=image.get("sha256"),
        make_argv=shlex.split(reproducer) if isinstance(reproducer, str) else [],
    )


def _v1_boot(accelerator: str | None, details: Mapping[str, Any]) -> BootInfo | None:
    qemu = details.get("qemu")
    if accelerator is None and qemu is None:
        return None
    try:
        argv = shlex.split(qemu) if isinstance(qemu, str) else [str(a) for a in qemu or []]
    except ValueError:
        argv = []
    boot = _v1_map(details, "boot")
    memory = boot.get("memory") or _v1_after(argv, "-m")
    smp = boot.get("smp") or _v1_after(argv, "-smp")
    reason = details.get("exit_reason")
    return BootInfo(
        accel=Accel(accelerator) if accelerator is not None else None,
        accel_reason=str(details.get("accelerator_reason", "")),
        qemu_argv=argv,
        memory=str(memory) if memory is not None else None,
        smp=int(smp) if smp is not None else None,
        cmdline=_v1_after(argv, "-append"),
        exit_reason=ExitReason(reason) if reason is not None else None,
        machine=_v1_machine(_v1_map(details, "machine")),
    )


def _v1_machine(machine: Mapping[str, Any]) -> MachineInfo | None:
    """Branch `machines` wrote v1 results: details.machine, own_kernel as an object."""
    if "name" not in machine or "host_key_fingerprint" not in machine:
        return None
    own = _v1_map(machine, "own_kernel")
    return _machine_from_dict(
        {
            **machine,
            "own_kernel": own.get("release"),
            "mem_available_kb": own.get("mem_available_kb"),
            "lockdown": own.get("lockdown"),
        }
    )


def _run_from_v1(data: Mapping[str, Any]) -> ArchRun:
    details = data.get("details") or {}
    common = _common(data)
    kernel = common["kernel"]
    variant, rep = details.get("variant"), details.get("repetition")
    steps = _v1_map(details, "modules")
    return ArchRun(
        **common,
        series=kernel.split(_V1_SERIES, 1)[1] if _V1_SERIES in kernel else None,
        build=_v1_build(details),
        boot=_v1_boot(data.get("accelerator"), details),
        ab=AbSlot(Variant(variant), int(rep or 0)) if variant is not None else None,
        module_steps={str(k): _opt_int(v) for k, v in steps.items()},
    )


# ------------------------------------------------------------------ the document


def results_document(runs: Sequence[ArchRun], meta: RunMeta) -> dict[str, Any]:
    """The results.json content as a plain dict."""
    overall = worst(r.status for r in runs)
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": utc_now(),
        "meta": meta.to_json(),
        "summary": {
            "status": str(overall),
            "exit_code": EXIT_CODES[overall],
            "runs": [{"arch": r.arch, "kernel": r.kernel, "status": str(r.status)} for r in runs],
        },
        "runs": [_run_to_dict(run) for run in runs],
    }


def write_json(path: str | os.PathLike[str], runs: Sequence[ArchRun], meta: RunMeta) -> None:
    """Write results.json atomically (serialised fully before the file is touched).

    Values in ``meta.extra`` that JSON cannot represent are written as ``str()``;
    NaN/inf in durations raise ValueError.
    """
    text = json.dumps(results_document(runs, meta), indent=2, allow_nan=False, default=str)
    atomic_write_text(path, text + "\n")


def load_json(path: str | os.PathLike[str]) -> tuple[RunMeta, list[ArchRun]]:
    """Read a results.json (schema version 1 or 2) back into ``(meta, runs)``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ResultsFormatError(f"{path}: not UTF-8 text (offset {e.start})") from e
    except json.JSONDecodeError as e:
        raise ResultsFormatError(f"{path}: not valid JSON: {e}") from e
    version = check_document(data, str(path), SCHEMA_VERSION)  # names file and field
    reader = _run_from_v1 if version == 1 else _run_from_dict
    runs = []
    for i, raw in enumerate(data.get("runs", [])):
        try:
            runs.append(reader(raw))
        except (KeyError, TypeError, ValueError, AttributeError) as e:  # past the schema check
            raise ResultsFormatError(f"{path}: runs[{i}]: {type(e).__name__}: {e}") from e
    return RunMeta.from_json(data.get("meta", {})), runs


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

    def __init__(self, path: Path, meta: RunMeta, runs: list[ArchRun]) -> None:
        self.path = path
        self.meta = meta
        self.runs = runs

    @classmethod
    def create(
        cls,
        base: str | os.PathLike[str] = "results",
        *,
        meta: RunMeta | None = None,
        run_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> ResultDir:
        """Make a new directory with ``os.mkdir`` (atomic, fails if it exists).

        An explicit ``run_id`` that already exists raises FileExistsError; a random
        one is redrawn on the (unlikely) collision.
        """
        path = fresh_dir(base, run_id=_component(run_id, "run id") if run_id else None, now=now)
        info = replace(meta if meta is not None else RunMeta())
        info.run_id, info.created, info.complete = path.name, utc_now(), False
        result_dir = cls(path, info, [])
        result_dir.save()
        return result_dir

    @classmethod
    def at(cls, path: Path, *, meta: RunMeta, run_id: str | None = None) -> ResultDir:
        """A new result directory at exactly ``path`` (must not exist; ``os.mkdir``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path)
        info = replace(meta)
        info.run_id, info.created, info.complete = run_id or path.name, utc_now(), False
        result_dir = cls(path, info, [])
        result_dir.save()
        return result_dir

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
        """Add or replace the run for (arch, kernel, A/B slot); rewrite results.json."""

        def key(r: ArchRun) -> tuple[str, str, AbSlot | None]:
            # A/B runs repeat the same (arch, kernel): the slot tells them apart, and
            # its variant keeps both sides of a no-series A/B run (same kernel label).
            return (r.arch, r.kernel, r.ab)

        self.runs = [r for r in self.runs if key(r) != key(run)] + [run]
        self.save()

    def save(self) -> None:
        self.meta.updated = utc_now()
        write_json(self.results_json, self.runs, self.meta)

    def finish(self) -> RunStatus:
        """Mark complete, write results.json and junit.xml; return the overall status."""
        self.meta.complete = True
        self.meta.finished = utc_now()
        self.save()
        write_junit(self.junit_xml, self.runs, run_dir=self.path)
        return worst(r.status for r in self.runs)
