"""The one-shot boot entry (``boot: one-shot``): GRUB boots the kernel under test once.

For machines where kexec cannot be used. It is GRUB's own one-shot, the one
grub-reboot sets, and touches nothing the default boot depends on:

- the kernel under test and its initramfs go to ``/boot/kbulk/`` (GRUB reads
  /boot: it loads the default kernel from there);
- its menu entry goes to ``<grub dir>/custom.cfg``, which the grub.cfg that
  grub-mkconfig writes sources (41_custom) without running update-grub; the
  harness owns that file and refuses if one exists that is not its own;
- ``grub-editenv <grubenv> set next_entry=kbulk-oneshot``: grub.cfg's header
  boots next_entry once and clears it with save_env before booting it, so the
  kernel under test's reboot goes back to the default entry.

The default entry (grub.cfg's ``set default``, grubenv's saved_entry) is never
written. After the machine is back: next_entry must be gone and saved_entry
unchanged, then the entry file and /boot/kbulk are removed.

Refused before anything is changed where it cannot be made safe: no GRUB
tools (systemd-boot is not supported), a grub.cfg that does not clear
next_entry itself or does not source custom.cfg, a grubenv GRUB cannot write
(btrfs, zfs, LVM, RAID, LUKS: next_entry would never be cleared and the
machine would boot the kernel under test forever), Secure Boot (an unsigned
kernel is refused), a default entry the harness cannot determine, a pending
next_entry of someone else, a custom.cfg that is not the harness's.

This module decides and renders; MachineSession runs the commands. The
decision functions are pure, so every refusal is unit-tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

ENTRY_ID = "kbulk-oneshot"
BOOT_DIR = "/boot/kbulk"
MARK = "# kbulk one-shot entry"  # first line of the harness's custom.cfg
GRUB_DIRS = ("/boot/grub", "/boot/grub2")
# Filesystems and layers GRUB cannot write its environment block on.
_NO_ENV_WRITE_FS = {"btrfs", "zfs", "cpiofs", "newc", "odc", "romfs", "squash4", "tarfs"}
_SECURE_BOOT_VAR = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"

# Gathers what the decision needs, read-only. One line per fact, "key=value";
# grub.cfg and custom.cfg's first line are read separately. Constant script.
FACTS_SCRIPT = r"""
first() { k=$1; shift; for t; do command -v "$t" >/dev/null && { echo "$k=$t"; return; }; done; }
first editenv grub-editenv grub2-editenv
first probe grub-probe grub2-probe
first mkrelpath grub-mkrelpath grub2-mkrelpath
for d in /boot/grub /boot/grub2; do [ -f "$d/grub.cfg" ] && { echo "grub_dir=$d"; break; }; done
[ -d /sys/firmware/efi ] && echo efi=1
[ -r "$1" ] && echo "secure_boot=$(od -An -t u1 "$1" | awk '{print $NF}')"
command -v bootctl >/dev/null && bootctl is-installed >/dev/null 2>&1 && echo systemd_boot=1
exit 0
"""


def facts_command() -> list[str]:
    return ["sh", "-c", FACTS_SCRIPT, "kbulk-oneshot-facts", _SECURE_BOOT_VAR]


class OneShotRefused(ValueError):
    """The one-shot cannot be made safe on this machine; nothing was changed."""


@dataclass
class GrubFacts:
    """What the machine's own system says about its boot loader (read-only probes)."""

    editenv: str | None = None  # grub-editenv or grub2-editenv
    probe: str | None = None
    mkrelpath: str | None = None
    grub_dir: str | None = None  # the directory with grub.cfg
    efi: bool = False
    secure_boot: bool = False
    systemd_boot: bool = False
    grub_cfg: str = ""
    grubenv: dict[str, str] = field(default_factory=dict)
    env_fs: str = ""  # grub-probe --target=fs of the grub dir
    env_abstraction: str = ""  # grub-probe --target=abstraction (lvm, diskfilter, luks...)
    custom_cfg_first_line: str | None = None  # None: no custom.cfg


def parse_facts(text: str) -> GrubFacts:
    facts = GrubFacts()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        value = value.strip()
        if key in ("editenv", "probe", "mkrelpath", "grub_dir"):
            setattr(facts, key, value or None)
        elif key in ("efi", "systemd_boot"):
            setattr(facts, key, value == "1")
        elif key == "secure_boot":
            facts.secure_boot = value == "1"
    return facts


def parse_env(text: str) -> dict[str, str]:
    """``grub-editenv FILE list`` output -> variables."""
    env = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            env[key] = value
    return env


# grub-mkconfig's 00_header: boot next_entry once, clearing it first (GRUB
# 2.14 saves to the btrfs env_block when there is one, older ones to grubenv).
_CLEARS_NEXT_ENTRY = re.compile(
    r'set default="\$\{next_entry\}"\s+set next_entry=\s*\n(?:[^\n]*\n){0,3}?'
    r'\s*save_env (?:-f "\$\{env_block\}" )?next_entry\s*\n'
)
_SOURCES_CUSTOM = re.compile(r"source \$\{?(?:config_directory|prefix)\}?/custom\.cfg")
_DEFAULT = re.compile(r'^\s*set default="([^"]*)"\s*$', re.MULTILINE)


def default_entry(grub_cfg: str, env: Mapping[str, str]) -> str | None:
    """The entry GRUB boots when there is no next_entry, or None if not determinable.

    grub-mkconfig writes ``set default="${next_entry}"`` and then, in the else
    branch, the configured default: a menu index or id, or ``${saved_entry}``."""
    values = [v for v in _DEFAULT.findall(grub_cfg) if v != "${next_entry}"]
    if len(values) != 1:
        return None
    value = str(values[0])
    if value == "${saved_entry}":
        return env.get("saved_entry", "0") or "0"
    if "$" in value or not value:
        return None
    return value


def refusal(facts: GrubFacts) -> str | None:
    """Why the one-shot cannot be made safe on this machine, or None."""
    if facts.secure_boot:
        return (
            "Secure Boot is enabled: the firmware's shim/GRUB would refuse the unsigned "
            "kernel under test"
        )
    if not (facts.editenv and facts.probe and facts.mkrelpath and facts.grub_dir):
        other = " (systemd-boot is installed: not supported)" if facts.systemd_boot else ""
        return (
            "no GRUB to set a one-shot entry with (needs grub-editenv, grub-probe, "
            f"grub-mkrelpath and <grub dir>/grub.cfg){other}"
        )
    if not _CLEARS_NEXT_ENTRY.search(facts.grub_cfg):
        return (
            f"{facts.grub_dir}/grub.cfg does not clear next_entry itself (save_env "
            "next_entry): a one-shot could not be verified to be one-shot"
        )
    if not _SOURCES_CUSTOM.search(facts.grub_cfg):
        return f"{facts.grub_dir}/grub.cfg does not source custom.cfg: nowhere to add an entry"
    if facts.env_fs in _NO_ENV_WRITE_FS or facts.env_abstraction.strip():
        layer = facts.env_abstraction.strip() or facts.env_fs
        return (
            f"GRUB cannot write its environment on {facts.grub_dir} ({layer}): next_entry "
            "would never be cleared and the machine would boot the kernel under test forever"
        )
    if facts.grubenv.get("next_entry"):
        return f"a one-shot entry is already pending (next_entry={facts.grubenv['next_entry']})"
    if default_entry(facts.grub_cfg, facts.grubenv) is None:
        return f"the default entry cannot be determined from {facts.grub_dir}/grub.cfg"
    first = facts.custom_cfg_first_line
    if first is not None and not first.startswith(MARK):
        return f"{facts.grub_dir}/custom.cfg exists and is not the harness's: it is left alone"
    return None


def _grub_quote(arg: str) -> str:
    """One word for GRUB's script lexer: single-quoted, as in sh."""
    return "'" + arg.replace("'", "'\\''") + "'"


@dataclass(frozen=True)
class Location:
    """Where GRUB finds /boot/kbulk: the filesystem's UUID and the path on it."""

    fs_uuid: str
    relpath: str  # grub-mkrelpath of /boot/kbulk: "/kbulk" when /boot is its own fs
    modules: tuple[str, ...]  # insmod before reading it (part_gpt, ext2 ...)


def render_entry(location: Location, args: list[str], run_id: str) -> str:
    """custom.cfg with the one-shot's menu entry (its id is what next_entry names)."""
    if not re.fullmatch(r"[A-Za-z0-9-]+", location.fs_uuid):
        raise OneShotRefused(f"unexpected filesystem UUID {location.fs_uuid!r} from grub-probe")
    inserts = "".join(f"\tinsmod {_grub_quote(m)}\n" for m in location.modules)
    kernel = _grub_quote(f"{location.relpath}/kernel")
    initrd = _grub_quote(f"{location.relpath}/initramfs")
    words = " ".join(_grub_quote(a) for a in args)
    return (
        f"{MARK} ({run_id}); kbulk removes this file when the machine is back.\n"
        f"menuentry {_grub_quote('kbulk one-shot ' + run_id)} --id {ENTRY_ID} {{\n"
        f"{inserts}"
        f"\tsearch --no-floppy --fs-uuid --set=root {location.fs_uuid}\n"
        f"\tlinux {kernel} {words}\n"
        f"\tinitrd {initrd}\n"
        "}\n"
    )


def check_after(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What is wrong with grubenv after the return: next_entry left, saved_entry changed."""
    problems = []
    if after.get("next_entry"):
        problems.append(f"next_entry is still {after['next_entry']!r}: GRUB did not clear it")
    if before.get("saved_entry") != after.get("saved_entry"):
        problems.append(
            f"saved_entry changed from {before.get('saved_entry')!r} "
            f"to {after.get('saved_entry')!r}"
        )
    return problems
