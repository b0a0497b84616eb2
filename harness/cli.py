"""kbulk command line: arguments in, one command function each, exit codes out
(from record.status.EXIT_CODES); the work happens in the pipeline modules."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
from pathlib import Path

from harness import bisect, seriescheck
from harness import doctor as doctor_mod
from harness.ab import DEFAULT_MAX_REPS, run_ab
from harness.analysis.lava_log import LavaLogError, extract_console, looks_like_lava
from harness.analysis.reader import DEFAULT_MAX_BYTES, ConsoleFile, spool
from harness.boot.accel import probe_cache
from harness.compare_cmd import run_compare
from harness.errors import failure
from harness.export import kcidb
from harness.fsutil import atomic_write_text, fresh_dir
from harness.kernel.arch import ARCHES
from harness.kernel.patches import PatchError, load_series
from harness.kernel.source import from_debian
from harness.machine.inventory import InventoryError, find_machine
from harness.paths import REPO_ROOT, cache_root
from harness.pipeline import Pipeline, RunOptions, run_from_console, validate_suites
from harness.progress import Reporter
from harness.record.junit import write_junit
from harness.record.meta import RunMeta
from harness.record.run import ArchRun
from harness.record.status import EXIT_CODES, EXIT_USAGE, RunStatus
from harness.record.store import ResultDir, write_json
from harness.scale.plan import Plan, PlanError, PlanInputs, make_plan, read_plan, repo_relative
from harness.spec import RunSpec, SpecError, load_spec

DEFAULT_SPEC = REPO_ROOT / "configs" / "default.yaml"

DESCRIPTION = """\
Build, boot and test Linux kernels with a patch series under QEMU.

  kbulk run                 the main job: Linux 7.2 + patches/v7.2, x86_64 and
                            arm64, KUnit suites and test modules, results in
                            results/<timestamp>-<id>/ (console logs, results.json,
                            junit.xml)
  kbulk run --arch x86_64 --suites 'page_alloc_bulk*'
                            one architecture, a KUnit glob
  kbulk run --no-series     the baseline kernel
  kbulk parse console.log   results from a saved console log
  kbulk doctor              what this host lacks, and whether KVM really works
  kbulk series-check        checkpatch --strict every patch, build every prefix
  kbulk kcidb DIR -o k.json a result directory as a KCIDB document
  kbulk plan --ab --reps 2  independent cells (JSON, GitLab, GitHub, LAVA);
                            kbulk run --cell ID --out DIR runs one,
                            kbulk merge DIR... --out DIR merges them
  kbulk bisect --test SUITE.CASE
                            the first patch of the series that makes it fail

Exit status: 0 pass, 1 test failure, 3 kernel crash, 4 timeout/hang,
5 build failure, 6 config error, 7 patch failure, 8 infrastructure error,
9 no tests ran, 2 usage error.
"""


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="build, boot and test (the main job)",
        description="Obtain the source, apply the series, build, boot under QEMU and test.",
    )
    _add_kernel_options(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--series", type=Path, action="append", dest="series_list",
                       help="patch series directory (quilt 'series' file); with --cell, "
                       "repeatable as in `kbulk plan`")  # fmt: skip
    group.add_argument("--no-series", action="store_true", help="build the unpatched baseline")
    p.add_argument("--upto", type=int, metavar="N", action="append", dest="upto_list",
                   help="apply only the first N patches (boot the series at patch N); with "
                   "--cell, repeatable as in `kbulk plan`")  # fmt: skip
    cell = p.add_argument_group(
        "one cell of a plan (`kbulk plan`)",
        "--cell ID --out DIR runs one cell into DIR (fixed name, replaced atomically). "
        "The plan is read from --plan FILE, or recomputed from the plan options given "
        "here (--spec, --arch, --ab, --reps, --series, --baseline, --upto, --suites, ...).",
    )
    cell.add_argument("--cell", metavar="ID", help="the cell to run")
    cell.add_argument("--out", type=Path, metavar="DIR", help="the cell's directory")
    cell.add_argument("--plan", type=Path, metavar="FILE", help="plan written by `kbulk plan`")
    cell.add_argument(
        "--expect-plan", metavar="PLAN_ID",
        help="refuse to run unless the plan's ID is this (the plan job's)",
    )  # fmt: skip
    cell.add_argument("--build-only", action="store_true",
                      help="only build: DIR gets the cell's kernel, initramfs.cpio and "
                      "cmdline, for a lab that boots them (LAVA)")  # fmt: skip
    _add_plan_shape(cell)


def _add_plan_shape(p: argparse._ActionsContainer) -> None:
    """Plan options that `kbulk run` does not have otherwise."""
    p.add_argument("--ab", action="store_true",
                   help="A/B plan: baseline and patched, one cell per boot")  # fmt: skip
    p.add_argument("--reps", type=int, default=1, metavar="N",
                   help="with --ab: boots per kernel and arch; default: %(default)s")  # fmt: skip
    p.add_argument("--baseline", action="store_true",
                   help="run plan: also a cell for the unpatched kernel")  # fmt: skip


def _add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan",
        help="expand a run definition into independent cells (JSON, GitLab, GitHub, LAVA)",
        description="Expand a run definition, its architectures, series revisions and "
        "prefixes (run plans) or A/B repetitions (--ab) into independent cells with stable "
        "IDs. Run one with `kbulk run --cell ID --out DIR`, merge them with `kbulk merge`.",
    )
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC,
                   help="run definition (YAML); default: %(default)s")  # fmt: skip
    p.add_argument("--arch", action="append", choices=sorted(ARCHES), dest="arches",
                   help="architecture (repeatable); default: the run definition's")  # fmt: skip
    p.add_argument("--series", type=Path, action="append", dest="series_list",
                   help="series directory (repeatable: one cell per revision); default: the "
                   "run definition's")  # fmt: skip
    p.add_argument("--upto", type=int, action="append", dest="upto_list", metavar="N",
                   help="also the series' first N patches (repeatable: prefixes)")  # fmt: skip
    p.add_argument("--suites", help="KUnit suite glob (kunit.filter_glob)")
    p.add_argument("--no-modules", action="store_true", help="skip the test modules")
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    p.add_argument("--cmdline", action="append", default=[],
                   help="extra kernel argument (repeatable)")  # fmt: skip
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="overall seconds per boot")
    _add_plan_shape(p)
    p.add_argument("--plan", type=Path, metavar="FILE",
                   help="a plan written by `kbulk plan` (-o FILE), in another --format; "
                   "the plan options are then its own")  # fmt: skip
    p.add_argument("--format", choices=["json", "gitlab", "github", "lava"], default="json",
                   help="json: the plan; gitlab: a child pipeline (a job per cell + merge); "
                   "github: a strategy.matrix; lava: a qemu job definition per cell")  # fmt: skip
    p.add_argument("-o", "--output", type=Path,
                   help="write here (lava: a directory, one <cell>.yaml each); default: "
                   "standard output")  # fmt: skip
    p.add_argument("--artifacts-url", metavar="URL",
                   help="lava: where each cell's kernel and initramfs.cpio are published "
                   "(URL/<cell>/kernel, URL/<cell>/initramfs.cpio)")  # fmt: skip


def _add_merge(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "merge",
        help="merge cell directories into one result directory",
        description="One results.json, junit.xml and summary.md from the cells of a plan "
        "(A/B cells give what `kbulk compare` takes). Cells of another plan, host kind, "
        "source, series or config are refused (exit 8) naming the cell directory and the "
        "field, unless --force (the warning is recorded in meta.merged and summary.md). "
        "Exit: the worst cell status, 2 not a cell directory, 8 refused.",
    )
    p.add_argument("dirs", type=Path, nargs="+", metavar="CELL_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="the merged result directory (replaced atomically)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="merge cells that are not one run")


def _add_ab(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "ab",
        help="baseline against patched: build both, boot each N times interleaved",
        description="Build the baseline and the patched kernel from the same source and "
        "config, boot them alternately (A B A B), record every boot in one result directory "
        "for `kbulk compare`.",
    )
    _add_kernel_options(p)
    p.add_argument("--series", type=Path, help="patch series directory (the B side)")
    p.add_argument(
        "--reps", type=_reps, default=3,
        help="boots per kernel, or 'auto': add interleaved pairs until every headline "
        "figure's 95%% interval is narrower than its target (30 percentage points for "
        "fractions) or --max-reps is reached; default: %(default)s",
    )  # fmt: skip
    p.add_argument(
        "--max-reps", type=int, default=DEFAULT_MAX_REPS, metavar="N",
        help="budget of --reps auto: at most N boots per kernel; default: %(default)s",
    )  # fmt: skip


def _reps(text: str) -> int | None:
    """--reps: a number, or "auto" (None)."""
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: a number or 'auto'") from None


def _add_kernel_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `run` and `ab`: what to build and how to boot it."""
    p.add_argument(
        "--spec",
        type=Path,
        default=DEFAULT_SPEC,
        help="run definition (YAML); default: %(default)s",
    )
    p.add_argument(
        "--arch",
        action="append",
        choices=sorted(ARCHES),
        dest="arches",
        help="architecture to run (repeatable); default: the run definition's",
    )
    p.add_argument(
        "--source",
        type=Path,
        help="kernel source instead of the Debian package: a kernel tree or a tarball",
    )
    p.add_argument("--suites", help="KUnit suite glob (kunit.filter_glob), e.g. 'page_alloc_bulk*'")
    p.add_argument("--no-modules", action="store_true", help="skip the out-of-tree test modules")
    p.add_argument(
        "--accel",
        choices=["auto", "kvm", "tcg"],
        default="auto",
        help="auto: KVM only if a probe boot proves it works (default)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="directory for per-run result directories; default: %(default)s",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel make jobs; default: %(default)s",
    )
    p.add_argument(
        "--cmdline",
        action="append",
        default=[],
        help="extra kernel command-line argument (repeatable)",
    )
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="overall seconds per boot, > 0 (overrides the spec; there is no "
                   "'no limit', the spec's inactivity timeout always applies too)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="only the summary")  # fmt: skip
    p.add_argument(
        "--machine",
        metavar="NAME",
        help="boot on this real machine (kexec over SSH) instead of QEMU; needs --inventory",
    )
    p.add_argument(
        "--inventory",
        type=Path,
        metavar="FILE",
        help="machine inventory (YAML); see README 'Real machines'",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text}: must be a positive number of seconds")
    return value


def _add_parse(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("parse", help="results from a saved console log (like `kunit.py parse`)")
    p.add_argument("log", type=Path, help="console log file, or - for standard input")
    p.add_argument("--arch", default="unknown", help="architecture label for the results")
    p.add_argument("--json", type=Path, help="write results.json here")
    p.add_argument("--junit", type=Path, help="write JUnit XML here")
    p.add_argument("--spec", type=Path, default=None,
                   help="run definition whose modules' regex rules and load_rc apply "
                   "(out-of-tree modules); default: KTAP only")  # fmt: skip
    p.add_argument("--format", choices=["auto", "console", "lava"], default="auto",
                   help="console: a raw serial log; lava: a LAVA job log (lavacli jobs logs "
                   "--raw: one {dt, lvl, msg} record a line), its target lines are the "
                   "console; auto (default): LAVA if the first line is such a record")  # fmt: skip
    p.add_argument("--max-bytes", type=_size, default=DEFAULT_MAX_BYTES, metavar="SIZE",
                   help="read at most this much of the log (e.g. 64M, 1G); the rest is not "
                   "read and the run is infra_error; default: 64M")  # fmt: skip


def _size(text: str) -> int:
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    number, unit = text[:-1], text[-1:].upper()
    if unit not in units or unit == "":
        number, unit = text, ""
    try:
        value = int(number) * units[unit]
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be a positive size (bytes, or 64M, 1G)")
    return value


def _add_doctor(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check host tools and KVM")
    p.add_argument("--arch", action="append", choices=sorted(ARCHES), dest="arches")
    p.add_argument("--forget-kvm", action="store_true", help="forget cached KVM probe verdicts")


def _add_source(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("source", help="fetch and extract the pinned kernel source; print its path")
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC,
                   help="run definition naming the source; default: %(default)s")  # fmt: skip


def _add_series_check(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "series-check",
        help="checkpatch every patch and build every prefix of the series",
        description="Like ktest.pl's patchcheck: checkpatch.pl --strict on each patch, then "
        "apply the patches one by one to an incremental work tree and build after each, "
        "reporting build failures and new compiler warnings in the files each patch touches. "
        "Exit: 0 clean, 1 checkpatch findings or new warnings, 5 a prefix does not build, "
        "6 config error, 7 a patch does not apply, 8 infrastructure error.",
    )
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC,
                   help="run definition (source, config); default: %(default)s")  # fmt: skip
    p.add_argument("--series", type=Path, help="patch series directory; default: the spec's")
    p.add_argument("--arch", action="append", choices=sorted(ARCHES), dest="arches",
                   help="architecture to build (repeatable); default: the spec's")  # fmt: skip
    p.add_argument("--config-fragment", action="append", type=Path, default=[],
                   help="extra config fragment (repeatable): configs/callers.config")  # fmt: skip
    p.add_argument("--checkpatch-only", action="store_true", help="skip the builds")
    p.add_argument("--upto", type=int, metavar="N", help="stop after the first N patches")
    p.add_argument("--from", type=int, metavar="N", dest="first", default=1,
                   help="build from patch N on (prefix N-1 is built as the comparison base, "
                   "earlier patches are only applied); default: %(default)s")  # fmt: skip
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel make jobs; default: %(default)s")  # fmt: skip
    p.add_argument("--results", type=Path, default=Path("results"),
                   help="directory for result directories; default: %(default)s")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="only the summary")


def _add_compare(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("compare", help="compare baseline and patched results (report.md/html)",
                       description="DIR: one A/B directory (runs without '+series' are the "
                       "baseline); DIR_A DIR_B: baseline and patched. Exit: 0 no regression, "
                       "1 regression, 2 usage, 8 runs differ in more than the kernel (or share no "
                       "arch), 10 a results.json is malformed.")  # fmt: skip
    c.add_argument("dirs", type=Path, nargs="*", metavar="DIR", help="result directories (1 or 2)")
    c.add_argument("--baseline", type=Path, action="append", default=[], dest="baseline_dirs",
                   help="another baseline result directory (repeatable)")  # fmt: skip
    c.add_argument("--patched", type=Path, action="append", default=[], dest="patched_dirs",
                   help="another patched result directory (repeatable)")  # fmt: skip
    r = sub.add_parser("report", help="the compare report for one A/B result directory")
    r.add_argument("dirs", type=Path, nargs=1, metavar="DIR", help="A/B result directory")
    for p in (c, r):
        p.add_argument("--baseline-label", help="kernel label of the baseline runs")
        p.add_argument("--patched-label", help="kernel label of the patched runs")
        p.add_argument("--out", type=Path, help="output directory; default: the (second) DIR")
        p.add_argument("--force", action="store_true", help="compare even if runs differ")
        p.add_argument(
            "--tradeoffs", type=Path, action="append", default=[], metavar="FILE",
            help="declared trade-offs: a run definition's tradeoffs: or a series' "
            "tradeoffs.yaml (repeatable); default: those the A/B run recorded",
        )  # fmt: skip


def _add_kcidb(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("kcidb", help="a result directory as a KCIDB document (kcidb-io validated)",
                       description="Write RESULT_DIR's runs as a KCIDB I/O document (schema "
                       "5.3), validated with kcidb-io before it is written. Submitting it "
                       "(kcidb-submit) needs your KCIDB credentials. Exit: 0 written, "
                       "2 unusable input, 8 kcidb-io missing or the document invalid.")  # fmt: skip
    p.add_argument("dir", type=Path, metavar="RESULT_DIR")
    p.add_argument(
        "--origin", default="kbulk", help="KCIDB origin (ID prefix); default: %(default)s"
    )
    p.add_argument("-o", "--output", type=Path, help="write here; default: standard output")
    p.add_argument("--logs-url", help="URL where RESULT_DIR is published (gives log_url)")
    p.add_argument("--patches-url", help="URL of the patch files (gives patchset_files)")


def _add_bisect(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bisect",
        help="find the first patch that makes a test fail (or a metric worse) by binary search",
        description="Binary search over the series' prefixes (built incrementally in "
        "series-check's work tree, booted like `kbulk run`) for the first patch that makes "
        "the condition bad. Prefix 0 (no patches) must be good and the whole series bad; "
        "both are checked first. Prefixes that do not build or boot are skipped. Exit: "
        f"{bisect.EXIT_FOUND} found, {bisect.EXIT_AMBIGUOUS} only untestable (skipped) "
        "prefixes left between good and bad (candidates listed), 2 usage, 7 a patch does "
        f"not apply, 8 infrastructure error, {bisect.EXIT_REFUSED} refused (prefix 0 not "
        "good or the whole series not bad).",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--test", metavar="SUITE.CASE",
                      help="bad when this KTAP test fails or crashes, e.g. "
                      "page_alloc_bulk_semantics.bulk_nothing_to_do")  # fmt: skip
    what.add_argument("--module", metavar="NAME",
                      help="bad when the guest's step loading this test module fails")  # fmt: skip
    what.add_argument("--boots", action="store_true",
                      help="bad when the kernel crashes or hangs")  # fmt: skip
    what.add_argument("--metric", metavar="MODULE.CASE.KEY",
                      help="bad when this kbulk-metric is worse (the metric vocabulary's "
                      "direction) than --limit, or than prefix 0 by more than --change "
                      "(default: the vocabulary's threshold), e.g. "
                      "kbulk_bench.order0_batch64.ns_per_page")  # fmt: skip
    bound = p.add_mutually_exclusive_group()
    bound.add_argument("--limit", type=float, metavar="VALUE",
                       help="with --metric: an absolute limit in the metric's unit")  # fmt: skip
    bound.add_argument("--change", type=_percent, metavar="PCT",
                       help="with --metric: worse than prefix 0 by more than PCT percent "
                       "(percentage points for 0..1 rates), e.g. 20 or 20%%")  # fmt: skip
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC,
                   help="run definition (config, modules, boot); default: %(default)s")  # fmt: skip
    p.add_argument("--series", type=Path, help="patch series directory; default: the spec's")
    p.add_argument("--arch", choices=sorted(ARCHES),
                   help="the one architecture to bisect on; default: the spec's first")  # fmt: skip
    p.add_argument("--suites", help="KUnit suite glob (kunit.filter_glob); default: the spec's")
    p.add_argument("--no-modules", action="store_true", help="skip the out-of-tree test modules")
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto",
                   help="auto: KVM only if a probe boot proves it works (default)")  # fmt: skip
    p.add_argument("--cmdline", action="append", default=[],
                   help="extra kernel command-line argument (repeatable)")  # fmt: skip
    p.add_argument("--timeout", type=_seconds, metavar="SECONDS",
                   help="overall seconds per boot, > 0 (overrides the spec)")  # fmt: skip
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel make jobs; default: %(default)s")  # fmt: skip
    p.add_argument("--results", type=Path, default=Path("results"),
                   help="directory for result directories; default: %(default)s")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="only the summary")


def _percent(text: str) -> float:
    try:
        value = float(text.removesuffix("%")) / 100
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text}: a positive percentage, e.g. 20 or 20%")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kbulk", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run(sub)
    _add_ab(sub)
    _add_parse(sub)
    _add_doctor(sub)
    _add_source(sub)
    _add_series_check(sub)
    _add_compare(sub)
    _add_kcidb(sub)
    _add_plan(sub)
    _add_merge(sub)
    _add_bisect(sub)
    return parser


def _sigterm_as_exit(signum: int, frame: object) -> None:
    # Turn SIGTERM into SystemExit so finally blocks (which kill QEMU) run.
    raise SystemExit(128 + signum)


def _run_options(args: argparse.Namespace, reporter: Reporter) -> RunOptions | None:
    try:
        spec = load_spec(args.spec, REPO_ROOT)
        suites = validate_suites(args.suites) if args.suites else None
    except (SpecError, ValueError) as e:
        reporter.error(str(e))
        return None
    series_list = getattr(args, "series_list", None) or []
    upto_list = getattr(args, "upto_list", None) or []
    if getattr(args, "cell", None) is None and (len(series_list) > 1 or len(upto_list) > 1):
        reporter.error("--series and --upto are given once (repeat them only with --cell)")
        return None
    upto = upto_list[0] if len(upto_list) == 1 and getattr(args, "cell", None) is None else None
    series = series_list[0] if len(series_list) == 1 else getattr(args, "series", None)
    if upto is not None and (upto < 1 or getattr(args, "no_series", False)):
        reporter.error(f"--upto {upto}: needs N >= 1 and a series (not with --no-series)")
        return None
    if args.timeout is not None:
        spec.boot.timeout = args.timeout
    machine = None
    if args.machine or args.inventory:
        if not (args.machine and args.inventory):
            reporter.error("--machine and --inventory go together")
            return None
        try:
            machine = find_machine(args.inventory, args.machine)
        except InventoryError as e:  # names file:line, like a spec error: a usage error
            reporter.error(str(e))
            return None
    return RunOptions(
        spec=spec,
        results_root=args.results,
        cache=cache_root(),
        source_override=args.source,
        series_override=series,
        no_series=getattr(args, "no_series", False),
        series_upto=upto,
        arches=args.arches or ([machine.arch] if machine else []),
        suites=suites,
        accel=args.accel,
        jobs=args.jobs,
        extra_cmdline=args.cmdline,
        modules=not args.no_modules,
        argv=sys.argv,
        machine=machine,
    )


def cmd_run(args: argparse.Namespace, reporter: Reporter) -> int:
    if args.cell is not None or args.out is not None:
        return cmd_run_cell(args, reporter)
    if (
        args.ab
        or args.reps != 1
        or args.baseline
        or args.plan
        or args.expect_plan
        or (args.build_only)
    ):
        reporter.error(
            "--ab, --reps, --baseline, --plan, --expect-plan and --build-only go with --cell"
        )
        return 2
    opts = _run_options(args, reporter)
    if opts is None:
        return 2
    # Every stage's failure (source, patch, Kconfig, build, boot) is recorded as a
    # run with its status by the pipeline itself (harness.errors.failure).
    results, status = Pipeline(opts, reporter).run()
    _print_summary(reporter, results.runs)
    reporter.info(f"results: {results.path} (results.json, junit.xml)")
    return EXIT_CODES[status]


def _plan_inputs(args: argparse.Namespace) -> PlanInputs:
    """The plan options of `kbulk plan` (and of `kbulk run --cell` without --plan)."""
    return PlanInputs(
        spec=repo_relative(args.spec),
        mode="ab" if args.ab else "run",
        arches=tuple(args.arches or ()),
        reps=args.reps,
        series=tuple(repo_relative(s) for s in (args.series_list or ())),
        baseline=args.baseline,
        upto=tuple(args.upto_list or ()),
        suites=args.suites,
        modules=not args.no_modules,
        accel=args.accel,
        cmdline=tuple(args.cmdline),
        timeout=args.timeout,
    )


def _load_plan(args: argparse.Namespace) -> tuple[Plan, RunSpec]:
    """The plan of --plan FILE, or computed from the plan options (PlanError, SpecError)."""
    if getattr(args, "plan", None) is not None:
        plan = read_plan(args.plan)
        spec = load_spec(REPO_ROOT / plan.inputs.spec, REPO_ROOT)
        return plan, spec
    if args.suites:
        validate_suites(args.suites)
    inputs = _plan_inputs(args)
    spec = load_spec(args.spec, REPO_ROOT)
    return make_plan(inputs, spec), spec


def cmd_plan(args: argparse.Namespace, reporter: Reporter) -> int:
    from harness.scale import emit  # only this command needs it

    try:
        plan, spec = _load_plan(args)
        if args.format == "lava":
            if not args.artifacts_url:
                raise PlanError("--format lava needs --artifacts-url URL (where each cell's "
                                "kernel and initramfs.cpio are published)")  # fmt: skip
            jobs = emit.lava_jobs(plan, spec, args.artifacts_url)
    except (PlanError, SpecError, ValueError) as e:
        reporter.error(str(e))
        return EXIT_USAGE
    if args.format == "lava":
        if args.output is None:
            print("".join(f"---\n{text}" for text in jobs.values()), end="")
            return 0
        args.output.mkdir(parents=True, exist_ok=True)
        for cell_id, text in jobs.items():
            atomic_write_text(args.output / f"{cell_id}.yaml", text)
        reporter.info(f"{args.output}: {len(jobs)} LAVA job definitions")
        return 0
    if args.format == "json":
        text = json.dumps(plan.to_json(), indent=2) + "\n"
    elif args.format == "gitlab":
        text = emit.gitlab_child(plan, spec)
    else:
        text = emit.github_matrix(plan) + "\n"
    if args.output is None:
        print(text, end="")
    else:
        atomic_write_text(args.output, text)
        reporter.info(f"{args.output}: plan {plan.plan_id}, {len(plan.cells)} cells")
    return 0


def plan_run_args(args: argparse.Namespace, plan: Plan) -> argparse.Namespace:
    """`kbulk run` arguments for a cell: the plan's inputs (a --plan file's, not the
    command line's defaults), the cell's own series set by run_cell."""
    inputs = plan.inputs
    return argparse.Namespace(
        **{
            **vars(args),
            "spec": REPO_ROOT / inputs.spec,
            "suites": inputs.suites,
            "no_modules": not inputs.modules,
            "accel": inputs.accel,
            "cmdline": list(inputs.cmdline),
            "timeout": inputs.timeout,
            "series_list": None,
            "upto_list": None,
        }
    )


def cmd_run_cell(args: argparse.Namespace, reporter: Reporter) -> int:
    from harness.scale.cell import build_cell, run_cell

    if args.cell is None or args.out is None:
        reporter.error("--cell ID and --out DIR go together")
        return EXIT_USAGE
    if args.no_series:
        reporter.error("--no-series: in a plan, the unpatched kernel is --baseline")
        return EXIT_USAGE
    try:
        plan, _ = _load_plan(args)
        cell = plan.cell(args.cell)
    except (PlanError, SpecError, ValueError) as e:
        reporter.error(str(e))
        return EXIT_USAGE
    if args.expect_plan is not None and args.expect_plan != plan.plan_id:
        reporter.error(
            f"--expect-plan {args.expect_plan}: these inputs give plan {plan.plan_id} (the "
            "run definition, a series or the options changed since the plan was made)"
        )
        return EXIT_USAGE
    opts = _run_options(plan_run_args(args, plan), reporter)
    if opts is None:
        return EXIT_USAGE
    if args.build_only:
        out, status = build_cell(plan, cell, args.out, opts, reporter)
        if status is RunStatus.PASS:
            reporter.info(f"cell {cell.id}: {out} (kernel, initramfs.cpio, cmdline, build.json)")
        return EXIT_CODES[status]
    out, status = run_cell(plan, cell, args.out, opts, reporter)
    results = ResultDir.open(out)
    _print_summary(reporter, results.runs)
    reporter.info(f"cell {cell.id}: {out} (results.json, junit.xml, summary.md)")
    return EXIT_CODES[status]


def cmd_merge(args: argparse.Namespace, reporter: Reporter) -> int:
    from harness.scale.merge import MergeError, MergeRefused, merge_cells

    try:
        results, status = merge_cells(
            args.dirs, args.out, force=args.force, argv=sys.argv, warn=reporter.warn
        )
    except MergeError as e:
        reporter.error(str(e))
        return EXIT_USAGE
    except MergeRefused as e:
        reporter.error("refusing to merge: these cells are not one run (--force to merge anyway)")
        for problem in e.problems:
            reporter.error(f"  {problem}")
        return EXIT_CODES[RunStatus.INFRA_ERROR]
    _print_summary(reporter, results.runs)
    reporter.info(f"merged {len(results.meta.merged.cells) if results.meta.merged else 0} "
                  f"cells: {results.path} (results.json, junit.xml, summary.md)")  # fmt: skip
    return EXIT_CODES[status]


def cmd_ab(args: argparse.Namespace, reporter: Reporter) -> int:
    opts = _run_options(args, reporter)
    if opts is None:
        return 2
    if args.reps is not None and args.reps < 1:
        reporter.error("--reps must be at least 1")
        return 2
    if args.max_reps < 1:
        reporter.error("--max-reps must be at least 1")
        return 2
    results, status = run_ab(Pipeline(opts, reporter), args.reps, args.max_reps)
    _print_summary(reporter, results.runs)
    # One command, one report: the comparison is written beside the runs.
    # Its verdict is in the report; the exit status stays the runs' status.
    run_compare(
        [results.path],
        argv=["kbulk", "compare", str(results.path)],
        info=reporter.info,
        error=reporter.warn,
    )
    reporter.info(f"results: {results.path} (report.md, report.html, compare.json)")
    return EXIT_CODES[status]


def _print_summary(reporter: Reporter, runs: list[ArchRun]) -> None:
    reporter.info("")
    for run in runs:
        accel = f" [{run.accelerator}]" if run.accelerator else ""
        reporter.info(
            f"{run.arch:8} {run.kernel}{accel}: {run.status.value.upper()} — {run.message}"
        )
        for crash in run.crashes:
            where = f" in {crash.test}" if crash.test else ""
            reporter.info(f"         {crash.kind}{where}: {crash.title} ({crash.location})")


def cmd_parse(args: argparse.Namespace, reporter: Reporter) -> int:
    spooled: list[Path] = []
    try:
        try:
            log: Path = args.log
            if str(args.log) == "-":  # read more than once: kept on disk, not in memory
                log = spool(sys.stdin.buffer, args.max_bytes)
                spooled.append(log)
            if args.format == "lava" or (args.format == "auto" and looks_like_lava(log)):
                # LAVA's log wraps each console line in a record: the console is its
                # target lines, parsed exactly as a local boot's console
                fd, name = tempfile.mkstemp(prefix="kbulk-lava-", suffix=".log")
                os.close(fd)
                console = Path(name)
                spooled.append(console)
                lines = extract_console(log, console, args.max_bytes)
                reporter.info(f"{args.log}: LAVA job log, {lines} console lines")
                log = console
            read = ConsoleFile(log, args.max_bytes)
        except OSError as e:
            reporter.error(f"{args.log}: {e.strerror}")
            return 2
        except LavaLogError as e:
            reporter.error(f"{args.log}: {e}")
            return 2
        return _parse(args, reporter, read)
    finally:
        for path in spooled:
            path.unlink(missing_ok=True)


def _parse(args: argparse.Namespace, reporter: Reporter, read: ConsoleFile) -> int:
    spec = None
    if args.spec is not None:
        try:
            spec = load_spec(args.spec, REPO_ROOT)
        except SpecError as e:
            reporter.error(str(e))
            return 2
    try:
        run = run_from_console(args.arch, read, str(args.log), spec)
        if run.ktap is not None and read.warnings:
            run.ktap.warnings[:0] = read.warnings
        if read.cut_at is not None:
            run.status = RunStatus.INFRA_ERROR
            run.message = (
                f"console log cut at {read.cut_at} bytes (--max-bytes): the results cover "
                f"only its start; {run.message}"
            )
        meta = RunMeta(command_line=list(sys.argv), parsed_log=str(args.log))
        if spec is not None:
            meta.module_metrics = spec.declared_metrics or None
        if args.json:
            write_json(args.json, [run], meta)
        if args.junit:
            write_junit(args.junit, [run])
    except Exception as e:
        failed = failure(e, error_log())
        reporter.error(failed.message)
        return EXIT_CODES[failed.status]
    _print_tree(reporter, run)
    warnings = run.ktap.warnings if run.ktap else []
    for warning in warnings[:_MAX_SHOWN_WARNINGS]:  # all of them are in --json
        reporter.warn(warning)
    if len(warnings) > _MAX_SHOWN_WARNINGS:
        reporter.warn(f"... {len(warnings) - _MAX_SHOWN_WARNINGS} more parse warnings")
    _print_summary(reporter, [run])
    return EXIT_CODES[run.status]


_MAX_SHOWN_WARNINGS = 20


def _print_tree(reporter: Reporter, run: ArchRun) -> None:
    if run.ktap is None:
        return
    for path, node in run.ktap.root.walk():
        if not path:
            continue
        indent = "  " * (len(path) - 1)
        directive = f" # {node.directive}" if node.directive else ""
        reporter.info(f"{indent}[{node.status.value.upper():7}] {path[-1]}{directive}")


def cmd_doctor(args: argparse.Namespace, reporter: Reporter) -> int:
    arches = args.arches or sorted(ARCHES)
    probes = probe_cache(cache_root())
    if args.forget_kvm:
        probes.verdicts.clear()
        probes.path.unlink(missing_ok=True)
    checks = doctor_mod.host_checks(arches)
    for check in checks:
        mark = "ok     " if check.ok else "MISSING"
        detail = f" ({check.detail})" if check.detail else ""
        reporter.info(f"[{mark}] {check.what}{detail}")
    reporter.info(doctor_mod.kvm_summary(probes.verdicts))
    reporter.info(f"cache: {cache_root()} (set KBULK_CACHE to move it)")
    line = doctor_mod.install_line(checks)
    required_missing = [c for c in checks if not c.ok and "optional" not in c.what]
    if line:
        reporter.info(f"install what is missing with:\n  {line}")
    return EXIT_CODES[RunStatus.INFRA_ERROR] if required_missing else 0


def cmd_source(args: argparse.Namespace, reporter: Reporter) -> int:
    try:
        spec = load_spec(args.spec, REPO_ROOT)
        if spec.debian is None:
            reporter.error(f"{args.spec}: the run definition names no Debian source")
            return 2
        tree = from_debian(spec.debian, cache_root(), reporter.info)
    except SpecError as e:
        reporter.error(str(e))
        return EXIT_CODES[RunStatus.INFRA_ERROR]
    except Exception as e:
        failed = failure(e, error_log())
        reporter.error(failed.message)
        return EXIT_CODES[failed.status]
    print(tree.path)
    return 0


def cmd_series_check(args: argparse.Namespace, reporter: Reporter) -> int:
    try:
        spec = load_spec(args.spec, REPO_ROOT)
    except SpecError as e:
        reporter.error(str(e))
        return 2
    series_dir = args.series or spec.series
    if series_dir is None or (args.upto is not None and args.upto < 1):
        reporter.error("need a series (--series DIR) and --upto N with N >= 1")
        return 2
    if args.first < 1 or (args.upto is not None and args.first > args.upto):
        reporter.error(f"--from {args.first}: N must be >= 1 and not beyond --upto")
        return 2
    opts = seriescheck.SeriesCheckOptions(
        spec=spec,
        series_dir=series_dir,
        results_root=args.results,
        cache=cache_root(),
        arches=args.arches or [],
        config_fragments=[f.resolve() for f in args.config_fragment],
        checkpatch_only=args.checkpatch_only,
        upto=args.upto,
        first=args.first,
        jobs=args.jobs,
        argv=sys.argv,
    )
    try:
        return seriescheck.run(opts, reporter)
    except Exception as e:
        failed = failure(e, error_log())
        reporter.error(failed.message)
        return EXIT_CODES[failed.status]


def cmd_compare(args: argparse.Namespace, reporter: Reporter) -> int:
    return run_compare(
        args.dirs,
        baseline_dirs=getattr(args, "baseline_dirs", []),
        patched_dirs=getattr(args, "patched_dirs", []),
        baseline_label=args.baseline_label,
        patched_label=args.patched_label,
        out=args.out,
        force=args.force,
        tradeoff_files=args.tradeoffs,
        argv=sys.argv if sys.argv[1:2] == [args.command] else ["kbulk", args.command],
        info=reporter.info,
        error=reporter.error,
    )


def cmd_kcidb(args: argparse.Namespace, reporter: Reporter) -> int:
    options = kcidb.ExportOptions(args.origin, args.logs_url, args.patches_url)
    try:
        doc = kcidb.export(args.dir, args.output, options)
    except kcidb.KcidbInputError as e:
        reporter.error(str(e))
        return EXIT_USAGE
    except kcidb.KcidbError as e:
        reporter.error(str(e))
        return EXIT_CODES[e.run_status]
    if args.output is None:
        print(json.dumps(doc, indent=2))
    else:
        reporter.info(f"{args.output}: {len(doc['builds'])} builds, {len(doc['tests'])} tests")
    return 0


def _condition(args: argparse.Namespace) -> bisect.Condition:
    """The bisect's meaning of bad (ConditionError: a usage error naming the option)."""
    if args.metric is None and (args.limit is not None or args.change is not None):
        raise bisect.ConditionError("--limit and --change go with --metric")
    if args.test is not None:
        return bisect.TestCondition(args.test)
    if args.module is not None:
        return bisect.ModuleCondition(args.module)
    if args.boots:
        return bisect.BootsCondition()
    return bisect.MetricCondition(args.metric, args.limit, args.change)


def cmd_bisect(args: argparse.Namespace, reporter: Reporter) -> int:
    try:
        spec = load_spec(args.spec, REPO_ROOT)
        condition = _condition(args)
        suites = validate_suites(args.suites) if args.suites else None
    except (SpecError, ValueError) as e:  # ConditionError is a ValueError
        reporter.error(str(e))
        return EXIT_USAGE
    series_dir = args.series or spec.series
    if series_dir is None:
        reporter.error(f"{args.spec}: the run definition names no series; pass --series DIR")
        return EXIT_USAGE
    steps = [] if args.no_modules else [m.name for m in spec.modules]
    needs = args.module or (args.metric and args.metric.split(".")[0])
    if needs and needs not in steps:
        reporter.error(
            f"{'--module' if args.module else '--metric'} {args.module or args.metric}: "
            f"module {needs} is not loaded by {args.spec}"
            + (
                " (--no-modules)"
                if args.no_modules
                else f" (modules: {', '.join(steps) or 'none'})"
            )
        )
        return EXIT_USAGE
    if args.timeout is not None:
        spec.boot.timeout = args.timeout
    arch = args.arch or spec.arches[0]
    run_opts = RunOptions(
        spec=spec, results_root=args.results, cache=cache_root(), series_override=series_dir,
        arches=[arch], suites=suites, accel=args.accel, jobs=args.jobs,
        extra_cmdline=args.cmdline, modules=not args.no_modules, argv=sys.argv,
    )  # fmt: skip
    opts = bisect.BisectOptions(run_opts, series_dir, arch, condition, argv=sys.argv)
    try:
        load_series(series_dir)  # a usage error before a result directory exists
        out = fresh_dir(args.results, tag="bisect")
        bisector = bisect.Bisector(opts, reporter, out)
    except Exception as e:  # the series does not load, the results directory is unwritable
        failed = failure(e, error_log())
        reporter.error(failed.message)
        return EXIT_USAGE if isinstance(e, PatchError) else EXIT_CODES[failed.status]
    reporter.info(f"results: {out}")
    reporter.info(f"bad: {condition.describe()}")
    report = bisector.run()
    reporter.info("")
    for line in report.summary_lines():
        reporter.info(line)
    reporter.info(f"results: {out} ({bisect.REPORT_JSON}, {bisect.REPORT_MD}); "
                  f"exit {report.exit_code}")  # fmt: skip
    return report.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    reporter = Reporter(quiet=getattr(args, "quiet", False))
    signal.signal(signal.SIGTERM, _sigterm_as_exit)
    handlers = {
        "run": cmd_run,
        "ab": cmd_ab,
        "parse": cmd_parse,
        "doctor": cmd_doctor,
        "source": cmd_source,
        "series-check": cmd_series_check,
        "compare": cmd_compare,
        "report": cmd_compare,
        "kcidb": cmd_kcidb,
        "plan": cmd_plan,
        "merge": cmd_merge,
        "bisect": cmd_bisect,
    }
    try:
        return handlers[args.command](args, reporter)
    except KeyboardInterrupt:
        reporter.error("interrupted")
        return 130
    except Exception as e:  # every command's last resort: a status and a message, no traceback
        failed = failure(e, error_log())
        reporter.error(failed.message)
        return EXIT_CODES[failed.status]


def error_log() -> Path | None:
    """Where a command's unexpected traceback goes when it has no result directory."""
    try:
        cache_root().mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return cache_root() / "harness-error.log"


if __name__ == "__main__":
    sys.exit(main())
