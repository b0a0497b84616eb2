"""The one-shot boot entry's decisions: when it is refused, what entry it writes, what it
checks after the return. The grub.cfg files are grub2-common 2.14's own 00_header and
41_custom output (tests/data/grub/). Not proven end to end: no lab machine boots
through GRUB yet (see the README's Real machines section)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest

from harness.machine import oneshot
from harness.machine.oneshot import GrubFacts, Location

DATA = Path(__file__).parent / "data" / "grub"
CFG = (DATA / "grub-2.14-default-0.cfg").read_text()
SAVED_CFG = (DATA / "grub-2.14-default-saved.cfg").read_text()
# GRUB 2.12 and older clear next_entry in grubenv only (no btrfs env_block)
OLD_CFG = CFG.replace(
    '   if [ "${env_block}" ] ; then\n     save_env -f "${env_block}" next_entry\n'
    "   else\n     save_env next_entry\n   fi\n",
    "   save_env next_entry\n",
)


def usable() -> GrubFacts:
    return GrubFacts(
        editenv="grub-editenv", probe="grub-probe", mkrelpath="grub-mkrelpath",
        grub_dir="/boot/grub", grub_cfg=CFG, grubenv={"saved_entry": "0"}, env_fs="ext2",
    )  # fmt: skip


def test_a_stock_debian_grub_is_accepted_old_and_new() -> None:
    assert OLD_CFG != CFG and "save_env next_entry" in OLD_CFG
    for cfg in (CFG, OLD_CFG, SAVED_CFG):
        assert oneshot.refusal(dataclasses.replace(usable(), grub_cfg=cfg)) is None
    ours = dataclasses.replace(usable(), custom_cfg_first_line=oneshot.MARK + " (old run)")
    assert oneshot.refusal(ours) is None  # a custom.cfg the harness left is its own


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secure_boot": True, "efi": True}, "Secure Boot"),
        ({"editenv": None}, "no GRUB"),
        ({"editenv": None, "systemd_boot": True}, "systemd-boot"),
        ({"grub_dir": None}, "no GRUB"),
        ({"grub_cfg": CFG.replace(" next_entry\n", " other\n")}, "does not clear next_entry"),
        ({"grub_cfg": CFG.replace("custom.cfg", "other.cfg")}, "does not source custom.cfg"),
        ({"env_fs": "btrfs"}, "boot the kernel under test forever"),
        ({"env_abstraction": "lvm"}, "GRUB cannot write its environment"),
        ({"env_abstraction": "luks2 cryptodisk"}, "GRUB cannot write its environment"),
        ({"grubenv": {"next_entry": "rescue"}}, "already pending (next_entry=rescue)"),
        ({"grub_cfg": CFG.replace('set default="0"', 'set default="${chosen}"')}, "cannot be"),
        ({"custom_cfg_first_line": "menuentry 'mine' {"}, "not the harness's"),
    ],
)
def test_unsafe_machines_are_refused_before_any_change(change: dict, reason: str) -> None:
    refused = oneshot.refusal(dataclasses.replace(usable(), **change))
    assert refused is not None and reason in refused


def test_the_default_entry_is_read_from_grub_cfg_or_grubenv() -> None:
    assert oneshot.default_entry(CFG, {}) == "0"
    assert oneshot.default_entry(SAVED_CFG, {"saved_entry": "gnulinux-simple-1234"}) == (
        "gnulinux-simple-1234"
    )
    assert oneshot.default_entry(SAVED_CFG, {}) == "0"  # GRUB's default without saved_entry
    assert oneshot.default_entry("menuentry 'x' {\n}\n", {}) is None


def test_facts_are_parsed_from_the_probe_script() -> None:
    facts = oneshot.parse_facts(
        "editenv=grub2-editenv\nprobe=grub2-probe\nmkrelpath=grub2-mkrelpath\n"
        "grub_dir=/boot/grub2\nefi=1\nsecure_boot=1\n"
    )
    assert (facts.editenv, facts.grub_dir, facts.efi, facts.secure_boot) == (
        "grub2-editenv", "/boot/grub2", True, True,
    )  # fmt: skip
    # the probe script itself runs on a host without GRUB and says so
    script = subprocess.run(
        [*oneshot.facts_command()[:3], "x", "/nonexistent"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = oneshot.parse_facts(script.stdout)
    assert found.editenv is None and found.secure_boot is False
    assert oneshot.refusal(found) is not None


def test_grubenv_listing_and_the_check_after_the_return() -> None:
    before = oneshot.parse_env("saved_entry=0\nnext_entry=kbulk-oneshot\n# comment\n")
    assert before == {"saved_entry": "0", "next_entry": "kbulk-oneshot"}
    assert oneshot.check_after({"saved_entry": "0"}, {"saved_entry": "0"}) == []
    assert oneshot.check_after({"saved_entry": "0"}, {"saved_entry": "0", "next_entry": ""}) == []
    left = oneshot.check_after({}, {"next_entry": "kbulk-oneshot"})
    assert left and "GRUB did not clear it" in left[0]
    moved = oneshot.check_after({"saved_entry": "0"}, {"saved_entry": "kbulk-oneshot"})
    assert moved and "saved_entry changed" in moved[0]


def test_the_entry_quotes_every_argument_for_grub() -> None:
    location = Location("0b7c-11aa", "/kbulk", ("part_gpt", "ext2"))
    text = oneshot.render_entry(
        location, ["console=ttyS0", "memmap=1M$0x30000000", "it's"], "r1-x86_64-console"
    )
    assert text.startswith(oneshot.MARK)
    assert f"--id {oneshot.ENTRY_ID} {{" in text
    assert "\tsearch --no-floppy --fs-uuid --set=root 0b7c-11aa\n" in text
    assert "\tinsmod 'part_gpt'\n\tinsmod 'ext2'\n" in text
    # $ stays literal inside single quotes, a quote is closed, escaped and reopened
    assert "\tlinux '/kbulk/kernel' 'console=ttyS0' 'memmap=1M$0x30000000' 'it'\\''s'\n" in text
    assert "\tinitrd '/kbulk/initramfs'\n" in text
    with pytest.raises(oneshot.OneShotRefused):
        oneshot.render_entry(Location("x; reboot", "/kbulk", ()), [], "r")
