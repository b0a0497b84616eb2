#!/usr/bin/env bash
# The test command (CI runs exactly this): set up, lint, type-check, then every test,
# including the end-to-end tests that build and boot real kernels on x86_64
# and arm64 (about 15 minutes cold on 2 cores, a few minutes with a warm cache).
# Extra arguments go to pytest, e.g. -m 'not e2e' for the fast tests only.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/setup.sh"
cd "$REPO"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"  # strict, over harness/ (see [tool.mypy] in pyproject.toml)
# The parser is checked against kunit_tool on the kernel's own KTAP corpus:
# make sure the pinned source is there (cached after the first time).
KBULK_LINUX_SRC="$("$VENV/bin/kbulk" source)"
export KBULK_LINUX_SRC
exec "$VENV/bin/pytest" -ra "$@"
