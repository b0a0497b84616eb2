"""The typed results.json meta block: every field survives write/read, v1 meta loads,
unknown or malformed keys are kept or ignored, never a crash."""

from __future__ import annotations

import json
from pathlib import Path

from harness.record.meta import HostMeta, RepsAutoMeta, RunMeta, SeriesMeta, SourceMeta
from harness.record.store import ResultDir, load_json, write_json
from harness.spec import Tradeoff

V1_AB = Path(__file__).parent / "data" / "results-v1" / "ab" / "results.json"


def full_meta() -> RunMeta:
    return RunMeta(
        command_line=["kbulk", "ab", "--reps", "auto", "--cmdline", "a b"],
        host=HostMeta("vm", "Linux-7.2", "x86_64", "3.12.1", 8),
        started="2026-11-29T10:00:00+00:00",
        spec="/work/configs/default.yaml",
        spec_name="default",
        arches=["x86_64", "arm64"],
        run_id="20261129T100000Z-abc123",
        created="2026-11-29T10:00:01+00:00",
        updated="2026-11-29T10:30:00+00:00",
        finished="2026-11-29T10:30:00+00:00",
        complete=True,
        source=SourceMeta("debian:linux-source-7.2 7.2.13-1", "7.2.13", "ab" * 32),
        source_sha256="ab" * 32,
        series=SeriesMeta("/work/patches/bulk", "cd" * 32, ["0001-a.patch"], ["ef" * 32]),
        kernel="v7.2.13+series-cdcdcdcdcdcd",
        kernels={"baseline": "v7.2.13", "patched": "v7.2.13+series-cdcdcdcdcdcd"},
        mode="ab",
        repetitions="auto",
        max_reps=20,
        reps_auto={
            "x86_64": RepsAutoMeta(4, 20, "budget", "budget reached", [("fill", 0.45, 0.3)])
        },
        tradeoffs=[Tradeoff("kbulk_stress.*.p50_ns", "higher", "batching", "x86_64", "spec")],
        parsed_log="console.log",
        extra={"future_key": {"nested": [1, 2]}},
    )


def test_fully_populated_meta_round_trips(tmp_path: Path) -> None:
    meta = full_meta()
    path = tmp_path / "results.json"
    write_json(path, [], meta)
    loaded, runs = load_json(path)
    assert runs == [] and loaded == meta
    written = json.loads(path.read_text())["meta"]
    assert written["future_key"] == {"nested": [1, 2]}  # unknown keys written back
    assert written["reps_auto"]["x86_64"]["wide"] == [["fill", 0.45, 0.3]]
    assert written["series"]["patch_sha256"] == ["ef" * 32]
    assert written["repetitions"] == "auto" and written["complete"] is True
    # and again: a second write is the same document
    write_json(tmp_path / "again.json", [], loaded)
    assert json.loads((tmp_path / "again.json").read_text())["meta"] == written


def test_unset_fields_are_not_written(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_json(path, [], RunMeta(command_line=["kbulk", "parse"], parsed_log="x.log"))
    assert json.loads(path.read_text())["meta"] == {
        "command_line": ["kbulk", "parse"],
        "parsed_log": "x.log",
    }


def test_v1_meta_loads() -> None:
    meta, _ = load_json(V1_AB)
    assert meta.command_line == ["kbulk", "ab", "--arch", "x86_64", "--reps", "2"]
    assert meta.host == HostMeta("vm", "Linux", "x86_64", "3.11.7", 2)
    assert meta.mode == "ab" and meta.repetitions == 2 and meta.spec_name == "default"
    assert meta.arches == ["x86_64"] and meta.complete is True
    assert meta.run_id == "20261120T100000Z-abc123"
    assert meta.kernels == {"baseline": "v7.2.13", "patched": "v7.2.13+series-1fc5a8998240"}
    assert meta.series is None and meta.source is None and meta.extra == {}


def test_malformed_and_unknown_meta_keys_do_not_crash(tmp_path: Path) -> None:
    raw = {
        "command_line": "not a list",
        "host": "vm",
        "series": "s1",  # an old test-style value: kept as read
        "reps_auto": {"x86_64": {"reps": "many"}, "arm64": 3},
        "tradeoffs": [{"metric": 1}, "x"],
        "complete": "yes",
        "brand_new": 42,
    }
    (tmp_path / "results.json").write_text(
        json.dumps({"schema_version": 2, "meta": raw, "runs": []})
    )
    result_dir = ResultDir.open(tmp_path)
    meta = result_dir.meta
    assert meta.command_line == [] and meta.host is None and meta.series is None
    assert meta.reps_auto == {} and meta.tradeoffs == [] and meta.complete is None
    assert meta.extra == {"series": "s1", "brand_new": 42}
    result_dir.save()
    written = json.loads((tmp_path / "results.json").read_text())["meta"]
    assert written["brand_new"] == 42 and written["series"] == "s1"
