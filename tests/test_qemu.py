import json
from pathlib import Path

import pytest

from harness.boot.accel import ProbeCache, Verdict
from harness.boot.qemu import Accel, BootSpec, qemu_command
from harness.kernel.arch import ARCHES, get_arch

BOOT = BootSpec(Path("/k/bzImage"), Path("/k/initrd"), ["panic=-1", "kunit.filter_glob=a*"])


def test_x86_tcg_command() -> None:
    cmd = qemu_command(get_arch("x86_64"), BOOT, Accel.TCG)
    argv = cmd.argv
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-machine") + 1] == "pc,accel=tcg"
    assert "-no-reboot" in argv
    assert argv[argv.index("-append") + 1] == "console=ttyS0 panic=-1 kunit.filter_glob=a*"
    assert argv[argv.index("-kernel") + 1] == "/k/bzImage"
    assert argv[argv.index("-initrd") + 1] == "/k/initrd"


def test_arm64_kvm_and_tcg_differ_only_in_machine() -> None:
    arm = get_arch("arm64")
    tcg = qemu_command(arm, BOOT, Accel.TCG).argv
    kvm = qemu_command(arm, BOOT, Accel.KVM).argv
    assert tcg[tcg.index("-cpu") + 1] == "max,pauth-impdef=on"
    assert kvm[kvm.index("-cpu") + 1] == "host"
    assert "console=ttyAMA0" in tcg[tcg.index("-append") + 1]
    strip = {"-machine", "-cpu"}

    def rest(argv: list[str]) -> list[str]:
        out, skip = [], False
        for a in argv:
            if skip:
                skip = False
            elif a in strip:
                skip = True
            else:
                out.append(a)
        return out

    assert rest(tcg) == rest(kvm)


def test_every_arch_is_complete() -> None:
    for arch in ARCHES.values():
        assert arch.image.startswith("arch/")
        assert arch.console and arch.kconfig and arch.host_machines
        assert arch.make_vars()[0] == f"ARCH={arch.make_arch}"


def test_icount_adds_instruction_counted_time_on_tcg_only() -> None:
    boot = BootSpec(Path("/k/Image"), Path("/k/initrd"), ["panic=-1"], icount=0)
    for arch in ARCHES.values():
        argv = qemu_command(arch, boot, Accel.TCG_ICOUNT).argv
        assert argv[argv.index("-icount") + 1] == "shift=0,sleep=off"
        assert "accel=tcg" in argv[argv.index("-machine") + 1]
        assert "-icount" not in qemu_command(arch, boot, Accel.TCG).argv
    with pytest.raises(ValueError):
        qemu_command(get_arch("x86_64"), BOOT, Accel.TCG_ICOUNT)


def test_icount_run_skips_the_kvm_probe(tmp_path: Path) -> None:
    from harness.boot.accel import choose
    from harness.progress import Reporter

    # no kernel image and no probe cache: choose() must not try a KVM boot
    for requested in ("auto", "kvm", "tcg"):
        verdict = choose(
            get_arch("x86_64"), requested, tmp_path / "none", tmp_path, Reporter(quiet=True), 0
        )
        assert verdict.accel == Accel.TCG_ICOUNT and "icount" in verdict.reason
    assert not (tmp_path / "accel-probe.json").exists()


def test_probe_cache_keeps_typed_verdicts_in_the_old_file_format(tmp_path: Path) -> None:
    path = tmp_path / "accel-probe.json"
    cache = ProbeCache.load(path)
    assert cache.verdicts == {}
    cache.put(ARCHES["x86_64"], Verdict(Accel.TCG, "probe boot failed"))
    (raw,) = json.loads(path.read_text()).values()
    assert raw == {"accel": "tcg", "reason": "probe boot failed"}  # the format before typing
    again = ProbeCache.load(path)
    assert again.get(ARCHES["x86_64"]) == Verdict(Accel.TCG, "probe boot failed")
    path.write_text("{not json")
    assert ProbeCache.load(path).verdicts == {}
