"""Where the harness keeps caches and results (outside the repository)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """KBULK_CACHE, else $XDG_CACHE_HOME/kbulk, else ~/.cache/kbulk."""
    if env := os.environ.get("KBULK_CACHE"):
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return (base / "kbulk").resolve()
