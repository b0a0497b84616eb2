#!/usr/bin/env bash
# The main job on a fresh Debian machine: set up, then `kbulk run` (patched
# Linux 7.2 on x86_64 and arm64, KUnit + test modules, results in results/).
# Extra arguments go to `kbulk run`, e.g. --arch x86_64 or --no-series.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/setup.sh"
cd "$REPO"
exec "$VENV/bin/kbulk" run "$@"
