"""Out-of-tree modules from anywhere (issue 12, section 3): the run definition's
per-entry ``dir`` / ``sources`` / ``load_rc`` / ``metrics`` keys, their errors (each
naming file:line and the key), the regex rules on a recorded console, the expected
load status, and compare judging the declared metrics by their declared threshold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.analysis.analyze import analyze
from harness.analysis.module_metrics import (
    DeclaredMetric,
    MetricRule,
    declared_spec,
    regex_metrics,
)
from harness.kernel.build import LogScan, generated_kbuild
from harness.record.meta import RunMeta
from harness.record.run import ArchRun
from harness.record.status import ExitReason, RunStatus
from harness.report.compare import LoadedRun, Side, compare
from harness.report.markdown import render_markdown
from harness.report.metrics import Direction, Kind
from harness.spec import SpecError, load_spec

VMALLOC_RULES = r"""
      metrics:
        - pattern: 'Summary: (?P<case>\w+) passed: \d+ failed: \d+ xfailed: \d+ repeat: \d+
            loops: \d+ avg: (?P<avg_usec>\d+) usec'
          values:
            avg_usec: {unit: usec, better: lower, threshold: 2%}
        - pattern: 'All test took worker\d+=(?P<cycles>\d+) cycles'
          case: all_tests
          values:
            cycles: {unit: cycles, better: lower, threshold: 0.05, kind: count}
"""


def write(directory: Path, text: str, name: str = "run.yaml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def entry(body: str) -> str:
    """A run definition loading one module entry (``body``: its keys, 6 spaces in)."""
    return "modules:\n  load:\n    - name: mymod\n" + body


def spec_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path, text), tmp_path)
    return str(e.value)


# ------------------------------------------------------------------ the schema


def test_kernel_dir_entry_with_rules(tmp_path: Path) -> None:
    text = entry(
        "      dir: kernel:lib\n      params: [run_test_mask=3083]\n"
        "      load_rc: -EAGAIN\n" + VMALLOC_RULES
    ).replace("mymod", "test_vmalloc")
    spec = load_spec(write(tmp_path, text), tmp_path)
    (mod,) = spec.modules
    assert mod.source is not None and mod.source.kernel_dir == "lib"
    assert mod.source.files == ("test_vmalloc.c",)  # default: <name>.c
    assert mod.load_rc == -11  # -EAGAIN
    assert [r.case for r in mod.rules] == [None, "all_tests"]
    avg, cycles = spec.declared_metrics
    assert (avg.module, avg.metric, avg.unit, avg.better, avg.kind, avg.threshold) == (
        "test_vmalloc", "avg_usec", "usec", Direction.LOWER, Kind.TIME, 0.02,
    )  # fmt: skip
    assert (cycles.kind, cycles.threshold) == (Kind.COUNT, 0.05)
    assert avg.source == f"{tmp_path / 'run.yaml'}:12"  # its avg_usec: line


def test_the_shipped_ab_vmalloc_definition_loads() -> None:
    from harness.paths import REPO_ROOT

    spec = load_spec(REPO_ROOT / "configs" / "ab-vmalloc.yaml", REPO_ROOT)
    (mod,) = spec.modules
    assert mod.source is not None and mod.source.label == "kernel:lib"
    assert {"run_test_mask=3083", "nr_threads=1", "nr_pages=64"} <= set(mod.params)
    assert {d.metric for d in spec.declared_metrics} == {"avg_usec", "cycles"}


def test_a_dir_of_your_own_is_relative_to_the_run_definition(tmp_path: Path) -> None:
    (tmp_path / "defs").mkdir()
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "Kbuild").write_text("obj-m := mymod.o\n")
    spec = load_spec(write(tmp_path / "defs", entry("      dir: ../mods\n")), tmp_path / "x")
    assert spec.modules[0].source is not None and spec.modules[0].source.path == mods
    absolute = load_spec(write(tmp_path, entry(f"      dir: {mods}\n")), tmp_path)
    assert absolute.modules[0].source == spec.modules[0].source.__class__(
        path=mods, where=f"{tmp_path / 'run.yaml'}:4"
    )


def test_the_existing_schema_is_unchanged(tmp_path: Path) -> None:
    spec = load_spec(
        write(tmp_path, "modules:\n  load:\n    - kbulk_bench\n    - {name: x, params: [a=1]}\n"),
        tmp_path,
    )
    assert [(m.name, m.params, m.source, m.load_rc, m.rules) for m in spec.modules] == [
        ("kbulk_bench", [], None, 0, []),
        ("x", ["a=1"], None, 0, []),
    ]
    assert spec.declared_metrics == []


def rule(pattern: str, values: str = "{n: {better: neutral}}", extra: str = "") -> str:
    """One metrics: rule as YAML (line 4: metrics, 5: pattern, 6: extra or values)."""
    return f"      metrics:\n        - pattern: '{pattern}'\n{extra}          values: {values}\n"


A_VALUES = "\n            a: "  # values: as a block, a: on line 7


@pytest.mark.parametrize(
    ("body", "line", "expected"),
    [
        ("      dir: nowhere\n", 4, r"modules\.load\[0\]\.dir: .*nowhere does not exist"),
        ("      dir: kernel:../etc\n", 4, r"dir: 'kernel:\.\./etc': kernel: takes a directory"),
        ("      dir: kernel:lib\n      sources: [../x.c]\n", 5, r"sources: '\.\./x\.c'"),
        ("      dir: kernel:lib\n      sources: [x.h]\n", 5, r"sources: names no \.c"),
        ("      load_rc: 11\n", 4, r"load_rc: 11: a load status is 0 or a negative errno"),
        ("      load_rc: -ENOTANERRNO\n", 4, r"load_rc: '-ENOTANERRNO': expected"),
        ("      metrics: []\n", 4, r"metrics: expected a list of rules"),
        (rule(r"x (?P<n>\d+"), 5,
         r"metrics\[0\]\.pattern: bad regular expression: missing \), unterminated subpattern"),
        (rule(r"took \d+ cycles"), 5, r"metrics\[0\]\.pattern: no named value group"),
        (rule(r"(?P<case>\w+) took"), 5, r"metrics\[0\]\.pattern: no named value group"),
        (rule(r"(?P<a>\d+) (?P<b>\d+)", "{a: {better: neutral}}"), 6,
         r"metrics\[0\]\.values: the pattern's group 'b' is not declared"),
        (rule(r"(?P<a>\d+)", A_VALUES + "{better: neutral}\n            z: {better: neutral}"), 8,
         r"metrics\[0\]\.values\.z: the pattern has no group \(\?P<z>"),
        (rule(r"(?P<a>\d+)", A_VALUES + "{unit: ns, better: faster}"), 7,
         r"values\.a\.better: 'faster'; allowed: higher, lower, neutral"),
        (rule(r"(?P<a>\d+)", A_VALUES + "{unit: ns, better: lower}"), 7,
         r"values\.a: a value with a better direction needs a threshold"),
        (rule(r"(?P<a>\d+)", A_VALUES + "{better: lower, threshold: two}"), 7,
         r"values\.a\.threshold: 'two': a relative change"),
        (rule(r"(?P<n>\d+)", extra="          patern: x\n"), 6,
         r"metrics\[0\]\.patern: unknown key; allowed here: case, pattern, values"),
        (rule(r"(?P<value>\d+)"), 5,
         r"\(\?P<metric>\.\.\.\) and \(\?P<value>\.\.\.\) go together"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_key(tmp_path: Path, body: str, line: int, expected: str) -> None:
    message = spec_error(tmp_path, entry(body))
    assert message.startswith(f"{tmp_path / 'run.yaml'}:{line}: "), message
    assert re.search(expected, message), message


def test_dir_without_makefile_or_kbuild(tmp_path: Path) -> None:
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "mymod.c").write_text("")
    message = spec_error(tmp_path, entry("      dir: mods\n"))
    assert message.startswith(f"{tmp_path / 'run.yaml'}:4: modules.load[0].dir: ")
    assert "has no Makefile or Kbuild" in message


def test_sources_only_with_a_kernel_dir(tmp_path: Path) -> None:
    message = spec_error(tmp_path, entry("      sources: [a.c]\n"))
    assert ":4: modules.load[0].sources: 'sources' is for a kernel:<dir>" in message


def test_bad_module_names_and_one_name_one_directory(tmp_path: Path) -> None:
    assert ":3: modules.load[0].name: '../x' is not a module name" in spec_error(
        tmp_path, "modules:\n  load:\n    - ../x\n"
    )
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "Makefile").write_text("obj-m := m.o\n")
    message = spec_error(tmp_path, "modules:\n  load:\n    - m\n    - {name: m, dir: mods}\n")
    assert "module 'm' comes from two directories" in message


def test_named_in_text_form(tmp_path: Path) -> None:
    text = entry(
        "      metrics:\n"
        "        - pattern: '(?P<case>\\w+): (?P<metric>\\w+)=(?P<value>[\\d.]+) ?(?P<unit>\\w*)'\n"
        "          values:\n"
        "            '*_ns': {unit: ns, better: lower, threshold: 1%}\n"
        "            '*': {better: neutral}\n"
    )
    spec = load_spec(write(tmp_path, text), tmp_path)
    (rule,) = spec.modules[0].rules
    lines = ["kbulk-init: step begin insmod mymod ", "[ 1.0] alloc: p50_ns=12.5 ns",
             "[ 1.1] alloc: calls=7", "kbulk-init: step end insmod mymod rc=0"]  # fmt: skip
    found = regex_metrics(lines, {"mymod": [rule]})
    assert [(m.test, m.values) for m in found] == [
        ("alloc", {"p50_ns": 12.5, "unit": "ns"}),
        ("alloc", {"calls": 7}),
    ]
    declared = spec.declared_metrics
    spec_ns = declared_spec(declared, "mymod", "p50_ns")
    assert spec_ns is not None and spec_ns.better is Direction.LOWER
    assert spec_ns.threshold == 0.01
    calls = declared_spec(declared, "mymod", "calls")
    assert calls is not None and calls.better is Direction.NEUTRAL
    assert declared_spec(declared, "other", "calls") is None  # per module


# ------------------------------------------------------- a recorded console


# lib/test_vmalloc.c loaded as a module by the guest's init (the lines as 7.2.13
# prints them; numbers made up), with a look-alike line outside the module's step.
def summary(case: str, passed: int, xfailed: int, repeat: int, loops: int, avg: int) -> str:
    """test_vmalloc's line, as vmalloc_test_init() prints it."""
    return (
        f"Summary: {case} passed: {passed} failed: 0 xfailed: {xfailed} repeat: {repeat} "
        f"loops: {loops} avg: {avg} usec"
    )


CONSOLE = [
    "[    0.500000] " + summary("fix_size_alloc_test", 1, 0, 1, 1, 999999),
    "[    1.000000] kbulk-init: start",
    "[    1.100000] kbulk-init: step begin insmod test_vmalloc run_test_mask=3083",
    "[    9.000000] " + summary("fix_size_alloc_test", 3, 0, 3, 1000, 52311),
    "[    9.000001] " + summary("vm_map_ram_test", 3, 0, 3, 1000, 20450),
    "[    9.000002] " + summary("no_block_alloc_test", 0, 3, 3, 1000, 301),
    "[    9.000003] All test took worker0=812345678 cycles",
    "[    9.100000] kbulk-init: step end insmod test_vmalloc rc=-11 "
    "Resource temporarily unavailable",
    "[    9.200000] kbulk-init: done",
]


def vmalloc_spec(tmp_path: Path) -> tuple[list[DeclaredMetric], dict[str, list[MetricRule]]]:
    text = entry("      dir: kernel:lib\n      load_rc: -EAGAIN\n" + VMALLOC_RULES)
    spec = load_spec(write(tmp_path, text.replace("mymod", "test_vmalloc")), tmp_path)
    return spec.declared_metrics, {m.name: m.rules for m in spec.modules}


def test_rules_read_only_the_modules_own_output(tmp_path: Path) -> None:
    _, rules = vmalloc_spec(tmp_path)
    found = regex_metrics(CONSOLE, rules)
    assert [(m.test_path, m.test, m.values) for m in found] == [
        (["test_vmalloc"], "fix_size_alloc_test", {"avg_usec": 52311}),
        (["test_vmalloc"], "vm_map_ram_test", {"avg_usec": 20450}),
        (["test_vmalloc"], "no_block_alloc_test", {"avg_usec": 301}),
        (["test_vmalloc"], "all_tests", {"cycles": 812345678}),
    ]
    assert regex_metrics(CONSOLE, {"other_module": rules["test_vmalloc"]}) == []


def test_expected_load_status_is_not_a_failure(tmp_path: Path) -> None:
    _, rules = vmalloc_spec(tmp_path)
    ok = analyze(CONSOLE, ExitReason.COMPLETED, ["test_vmalloc"], rules=rules,
                 load_rc={"test_vmalloc": -11})  # fmt: skip
    assert ok.status is RunStatus.PASS, ok.message
    assert len([m for m in ok.metrics if m.test_path == ["test_vmalloc"]]) == 4
    unexpected = analyze(CONSOLE, ExitReason.COMPLETED, ["test_vmalloc"], rules=rules)
    assert unexpected.status is RunStatus.TEST_FAILURE
    assert "module load failed: test_vmalloc rc=-11" in unexpected.message
    loaded = [line.replace("rc=-11 Resource temporarily unavailable", "rc=0") for line in CONSOLE]
    stayed = analyze(loaded, ExitReason.COMPLETED, ["test_vmalloc"], rules=rules,
                     load_rc={"test_vmalloc": -11})  # fmt: skip
    assert stayed.status is RunStatus.TEST_FAILURE
    assert "test_vmalloc rc=0 (expected -11)" in stayed.message


# --------------------------------------------------------------------- compare


def test_compare_judges_declared_metrics_by_their_threshold(tmp_path: Path) -> None:
    declared, rules = vmalloc_spec(tmp_path)

    def boot(kernel: str, avg: float, cycles: float) -> ArchRun:
        lines = [line.replace("52311", str(int(avg))).replace("812345678", str(int(cycles)))
                 for line in CONSOLE]  # fmt: skip
        return ArchRun("x86_64", kernel, RunStatus.PASS, metrics=regex_metrics(lines, rules))

    meta = RunMeta(module_metrics=declared)
    round_trip = RunMeta.from_json(meta.to_json())
    assert round_trip.module_metrics == declared

    def side(name: str, runs: list[ArchRun]) -> Side:
        return Side(name, [LoadedRun(r, round_trip, tmp_path) for r in runs], [])

    # avg_usec +4 % (threshold 2 %: a regression); cycles +3 % (threshold 5 %: within)
    a = [boot("a", 50000, 1000000), boot("a", 50010, 1000100), boot("a", 49990, 999900)]
    b = [boot("b", 52000, 1030000), boot("b", 52010, 1030100), boot("b", 51990, 1029900)]
    cmp = compare(side("baseline", a), side("patched", b))
    rows = {(m.case, m.key): m for m in cmp.arches[0].metrics}
    avg = rows[("fix_size_alloc_test", "avg_usec")]
    assert avg.spec.unit == "usec" and avg.spec.threshold == 0.02
    assert avg.verdict == "worse" and avg.regression
    assert rows[("all_tests", "cycles")].verdict == "within threshold"
    assert rows[("vm_map_ram_test", "avg_usec")].verdict == "same"
    assert cmp.regressions() == [
        "x86_64: test_vmalloc.fix_size_alloc_test avg_usec worse (+4.0%, threshold 2%)"
    ]
    report = render_markdown(cmp)
    assert "test_vmalloc: avg_usec" in report  # the declared thresholds are shown
    # Without the declaration (an older result directory) the built-in vocabulary
    # knows neither key: information only, never a regression.
    bare = Side("baseline", [LoadedRun(r, RunMeta(), tmp_path) for r in a], [])
    bare_b = Side("patched", [LoadedRun(r, RunMeta(), tmp_path) for r in b], [])
    assert compare(bare, bare_b).regressions() == []


# ------------------------------------------------------------------ building


def test_generated_kbuild_and_modpost_errors() -> None:
    assert generated_kbuild(["test_vmalloc.c", "helper.h"]).splitlines()[1:] == [
        "obj-m += test_vmalloc.o"
    ]
    scan = LogScan()
    for line in [
        "  MODPOST Module.symvers",
        'ERROR: modpost: "__vmalloc_node_noprof" [test_vmalloc.ko] undefined!',
        "make[3]: *** [scripts/Makefile.modpost:147: Module.symvers] Error 1",
    ]:
        scan.feed(line)
    assert scan.first_error.startswith('ERROR: modpost: "__vmalloc_node_noprof"')


def test_summary_shows_regex_read_modules(tmp_path: Path) -> None:
    from harness.report.summary import render_summary

    declared, rules = vmalloc_spec(tmp_path)
    run = ArchRun("x86_64", "k", RunStatus.PASS, metrics=regex_metrics(CONSOLE, rules))
    text = render_summary([run], RunMeta(module_metrics=declared))
    assert "test_vmalloc (read with the run definition's regular expressions):" in text
    assert "| vm_map_ram_test     | 20450    | -         |" in text
    assert "| all_tests           | -        | 812345678 |" in text
    assert "regular expressions" not in render_summary([run], RunMeta())


def test_parse_applies_a_run_definitions_rules(tmp_path: Path) -> None:
    """`kbulk parse --spec`: the same rules and load status as the live run; without
    it the module's -EAGAIN is a failed load and its lines are not metrics."""
    import json

    from harness.cli import main

    console = tmp_path / "console.log"
    console.write_text("\n".join(CONSOLE) + "\n")
    text = entry("      dir: kernel:lib\n      load_rc: -EAGAIN\n" + VMALLOC_RULES)
    spec = write(tmp_path, text.replace("mymod", "test_vmalloc"))
    out = tmp_path / "r.json"
    assert main(["parse", str(console), "--spec", str(spec), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    (run,) = data["runs"]
    assert [m["values"] for m in run["metrics"] if m["test_path"] == ["test_vmalloc"]][-1] == {
        "cycles": 812345678
    }
    assert [d["metric"] for d in data["meta"]["module_metrics"]] == ["avg_usec", "cycles"]
    assert main(["parse", str(console), "--json", str(out)]) == 1  # rc=-11: a failed load
    assert json.loads(out.read_text())["runs"][0]["metrics"] == []
    bad = write(tmp_path, "modules:\n  load:\n    - {name: x, load_rc: 5}\n", "bad.yaml")
    assert main(["parse", str(console), "--spec", str(bad)]) == 2


def test_one_directory_named_twice_is_one_source(tmp_path: Path) -> None:
    text = (
        "modules:\n  load:\n"
        "    - {name: test_vmalloc, dir: kernel:lib, params: [nr_pages=1]}\n"
        "    - {name: test_vmalloc, dir: kernel:lib, params: [nr_pages=64]}\n"
    )
    spec = load_spec(write(tmp_path, text), tmp_path)
    first, second = spec.modules
    assert first.source == second.source  # built once (pipeline: one per distinct source)
    assert [m.params for m in spec.modules] == [["nr_pages=1"], ["nr_pages=64"]]
    assert first.source is not None and second.source is not None
    assert (first.source.where, second.source.where) == (
        f"{tmp_path / 'run.yaml'}:3",
        f"{tmp_path / 'run.yaml'}:4",
    )
