#!/usr/bin/env bash
# Idempotent host set-up for kbulk: Debian packages and a Python venv.
# Sourced by main.sh and test.sh; safe to run again (installs only what is missing).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${KBULK_VENV:-$REPO/.venv}"

APT_PACKAGES=(
  make gcc libc6-dev flex bison bc perl patch xz-utils ccache dwarves file cpio
  libelf-dev libssl-dev binutils python3-venv
  qemu-system-x86 qemu-system-arm
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  openssh-server  # only its sshd binary: the transport tests start one on a loopback port
  # `kbulk source`'s private apt state (harness/kernel/source.py) is signed-by
  # /usr/share/keyrings/debian-archive-keyring.gpg: always on Debian, missing on
  # Ubuntu (CI runners); Ubuntu ships the same package in universe.
  debian-archive-keyring
  # gitlab-ci-local (tests/test_gitlab_local.py) copies job directories with rsync
  rsync
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "kbulk setup: installing ${missing[*]}" >&2
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then SUDO=(sudo); fi
  "${SUDO[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp="$VENV/.kbulk-installed"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
if [[ ! -f "$stamp" || "$REPO/pyproject.toml" -nt "$stamp" ]]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check -e "$REPO[test]"
  touch "$stamp"
fi
