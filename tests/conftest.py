"""Shared fixtures: result directories written by older harness versions, and a reporter."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.progress import Reporter

DATA = Path(__file__).parent / "data"


@pytest.fixture
def v1_ab_dir(tmp_path: Path) -> Path:
    """A copy of an A/B result directory written with results.json schema version 1."""
    target = tmp_path / "v1-ab"
    shutil.copytree(DATA / "results-v1" / "ab", target)
    return target


@pytest.fixture
def reporter() -> Reporter:
    return Reporter(quiet=True)
