"""Shared fixtures: result directories written by older harness versions; no fsync."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture
def v1_ab_dir(tmp_path: Path) -> Path:
    """A copy of an A/B result directory written with results.json schema version 1."""
    target = tmp_path / "v1-ab"
    shutil.copytree(DATA / "results-v1" / "ab", target)
    return target


@pytest.fixture
def no_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip fsync in tests that write many small result files (durability is tested
    in test_results; here it only costs time)."""
    monkeypatch.setattr("harness.fsutil.os.fsync", lambda fd: None)
