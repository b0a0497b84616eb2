"""Tests for the comparison reports: Markdown, HTML with SVG, compare.json, and the commands."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from runs import BASE, PATCHED, SHA, make_run, write_dir

from harness import cli
from harness.compare_cmd import run_compare
from harness.report.compare import compare, sides_from_dirs
from harness.report.html import render_html
from harness.report.markdown import render_markdown
from harness.report.svg import svg_batch, svg_fill

SVG = "{http://www.w3.org/2000/svg}"


def ab_dir(tmp_path: Path, *, slower: bool = False, fail: bool = False, accel: str = "tcg") -> Path:
    """One A/B directory, 3 interleaved repetitions; the patched kernel fills better."""
    runs = []
    for i in range(3):
        runs.append(make_run(BASE, filled=900 + 5 * i, p50=1000 + 10 * i, rep=i))
        runs.append(
            make_run(
                PATCHED, filled=1000 - i, p50=(2000 if slower else 1000) + 10 * i, rep=i,
                ns=(90, 50, 30, 26), nowait_ok=not (fail and i == 1), accel=accel,
            )
        )  # fmt: skip
    return write_dir(tmp_path / "ab", runs, command_line=["kbulk", "run", "--ab", "--reps", "3"])


def comparison(directory: Path, force: bool = False):
    return compare(
        *sides_from_dirs([directory], []),
        force=force,
        command_line=["kbulk", "report", str(directory)],
    )


def test_markdown_leads_with_counts_and_names_the_accelerator(tmp_path: Path):
    d = ab_dir(tmp_path)
    text = render_markdown(comparison(d))
    assert text.startswith(f"# kbulk compare: {BASE} -> {PATCHED}\n")
    assert "Verdict: no regression beyond threshold; 0 intended change(s), as declared;" in text
    assert "## Regressions beyond threshold\n\nnone" in text  # listed first, even when empty
    assert "- accelerator: x86_64: tcg (KVM probe boot failed; using TCG)" in text
    assert "TCG (emulation): times are not real-hardware figures" in text
    counts = text.index("### Host-independent counts")
    assert counts < text.index("### Times as patched/baseline ratios")
    # fill rate 0.905 -> 0.999, 3 runs a side, no overlap, Welch p < 0.001
    row = next(line for line in text.splitlines() if "| fill_rate" in line)
    assert row.split("|")[3:7] == [" 0.905 ±1% ", "   0.999 ±0% ", "  +10.4% ", " better p<0.001 "]
    # times as patched/baseline ratios: 90/100 ns per page at batch 1
    row = next(line for line in text.splitlines() if "order0_batch1 " in line)
    assert "| 0.90x |" in row and "better" in row
    assert SHA[BASE] in text and SHA[PATCHED] in text
    assert f"kbulk report {d}" in text  # this report's own command line
    assert "kbulk run --ab --reps 3" in text  # the runs' command line
    assert "x86_64 build: make O=/cache/work/" in text  # details.reproducer
    assert "- lower is better: req_ns_per_page, partial_rate, failed_rate" in text


def test_markdown_tables_are_aligned_for_mail(tmp_path: Path):
    text = render_markdown(comparison(ab_dir(tmp_path)))
    block = text.split("### Host-independent counts")[1].split("\n\n")[1].splitlines()
    assert len({len(line) for line in block}) == 1  # every row the same width
    assert block[1].startswith("|---")
    assert "---:|" in block[1]  # numeric columns right-aligned in Markdown too


def test_tcg_slowdown_is_shown_but_not_a_regression(tmp_path: Path):
    cmp = comparison(ab_dir(tmp_path, slower=True))
    assert cmp.regressions() == []
    assert cmp.exit_code == 0
    assert cmp.uncounted()[0] == (
        "x86_64: kbulk_stress.gfp_kernel_order0 p50_ns worse under TCG (+99.0%), not counted"
    )
    text = render_markdown(cmp)
    assert "## Slower under TCG (not counted as regressions)" in text
    row = next(line for line in text.splitlines() if "| p50_ns" in line)
    assert "| 1.99x |" in row and "WORSE" in row


def test_kvm_slowdown_is_a_regression(tmp_path: Path):
    runs = [make_run(BASE, filled=900, p50=1000 + i, accel="kvm", rep=i) for i in range(3)]
    runs += [make_run(PATCHED, filled=900, p50=2000 + i, accel="kvm", rep=i) for i in range(3)]
    cmp = comparison(write_dir(tmp_path / "kvm", runs))
    assert (
        "x86_64: kbulk_stress.gfp_kernel_order0 p50_ns worse (+99.9%, threshold 2%)"
        in cmp.regressions()
    )
    assert cmp.exit_code == 1


class _Checker(HTMLParser):
    """Fails on unbalanced tags (void elements aside)."""

    VOID = frozenset({"meta", "br", "hr", "img", "input", "link"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


def test_html_is_well_formed_with_svg_plots(tmp_path: Path):
    page = render_html(comparison(ab_dir(tmp_path, fail=True)))
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    assert checker.tags.count("svg") == 3  # fill rate, latency, ns/page vs batch
    assert "kbulk_stress.gfp_nowait_order0" in page
    assert SHA[PATCHED] in page
    # each plot is standalone XML, with the data drawn
    svgs = [page[s : page.index("</svg>", s) + 6] for s in _starts(page, "<svg")]
    for svg in svgs:
        ET.fromstring(svg)
    batch = ET.fromstring(svgs[2])
    lines = batch.findall(f"{SVG}polyline")
    assert len(lines) == 2  # baseline and patched
    assert len(lines[0].get("points", "").split()) == 4  # batch 1, 8, 64, 512


def _starts(text: str, needle: str) -> list[int]:
    out, i = [], text.find(needle)
    while i >= 0:
        out.append(i)
        i = text.find(needle, i + 1)
    return out


def test_svg_helpers_scale_the_data(tmp_path: Path):
    metrics = comparison(ab_dir(tmp_path)).arches[0].metrics
    fill = ET.fromstring(svg_fill(metrics) or "")
    bars = [r for r in fill.iter(f"{SVG}rect") if r.get("height") and r.get("width") == "12"]
    assert len(bars) == 4  # two cases with a fill rate, two sides
    heights = sorted(float(r.get("height", "0")) for r in bars)
    assert heights[-1] == pytest.approx(160.0 * 0.9993333, abs=0.1)  # y axis: 0..1 in 160 px
    assert svg_batch([]) is None


def test_run_compare_writes_reports_and_json(tmp_path: Path):
    d = ab_dir(tmp_path, fail=True)
    out = tmp_path / "out"
    lines: list[str] = []
    rc = run_compare([d], out=out, argv=["kbulk", "report", str(d)], info=lines.append)
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["compare.json", "report.html", "report.md"]
    data = json.loads((out / "compare.json").read_text())
    assert data["exit_code"] == 1
    assert (
        "x86_64: kbulk_stress.gfp_nowait_order0: pass -> fail 1/3, pass 2/3" in data["regressions"]
    )
    fill = next(m for m in data["arches"][0]["metrics"] if m["key"] == "fill_rate")
    assert fill["baseline"]["values"] == [0.9, 0.905, 0.91]
    assert fill["significant"] is True and fill["ranges_overlap"] is False
    assert data["arches"][0]["labels"]["patched"]["kbulk_stress.gfp_kernel_order0"] == {
        "api": ["bulk"]
    }
    assert [r["repetition"] for r in data["patched"]["runs"]] == [0, 1, 2]
    assert any("regression: x86_64" in line for line in lines)


def test_cli_compare_refuses_then_forces(tmp_path: Path, capsys: pytest.CaptureFixture):
    a = write_dir(tmp_path / "a", [make_run(BASE, filled=900)])
    b = write_dir(tmp_path / "b", [make_run(PATCHED, filled=1000, accel="kvm")])
    assert cli.main(["compare", str(a), str(b)]) == 8
    assert "accelerator differs: baseline tcg vs patched kvm" in capsys.readouterr().err
    assert not (b / "report.md").exists()
    assert cli.main(["compare", str(a), str(b), "--force"]) == 0
    text = (b / "report.md").read_text()  # default output: the second directory
    assert "**WARNING: FORCED COMPARISON - the runs differ in more than the kernel:**" in text
    assert "- x86_64: accelerator differs: baseline tcg vs patched kvm" in text


def test_cli_report_and_usage_errors(tmp_path: Path):
    d = ab_dir(tmp_path)
    assert cli.main(["report", str(d)]) == 0
    assert (d / "report.html").exists()
    assert cli.main(["compare", str(tmp_path / "missing")]) == 2
    assert cli.main(["report", str(d), "--patched-label", "v0"]) == 2
    assert cli.main(["compare"]) == 2  # no directory at all
    assert cli.main(["compare", str(d), str(d), "--baseline", str(d)]) == 2
