"""NUMA guests (boot.numa) and per-step task mempolicies: QEMU arguments, plan lines and
the run-definition errors, each naming the file, the line and the key."""

from pathlib import Path

import pytest

from harness.analysis.analyze import module_steps
from harness.boot import numa
from harness.boot.guest.initramfs import ModuleStep, render_plan
from harness.boot.guest.mempolicy import MemPolicy, MemPolicyError, MemPolicyMode
from harness.boot.qemu import Accel, BootSpec, qemu_command
from harness.kernel.arch import ARCHES, get_arch
from harness.paths import REPO_ROOT
from harness.spec import SpecError, load_spec


def test_two_nodes_split_memory_and_cpus() -> None:
    nodes = numa.layout(2, "1G", 2)
    assert nodes == [numa.NumaNode(0, 512, (0,)), numa.NumaNode(1, 512, (1,))]
    assert numa.qemu_args(nodes) == [
        "-object", "memory-backend-ram,id=kbulk-numa-mem0,size=512M",
        "-numa", "node,nodeid=0,cpus=0,memdev=kbulk-numa-mem0",
        "-object", "memory-backend-ram,id=kbulk-numa-mem1,size=512M",
        "-numa", "node,nodeid=1,cpus=1,memdev=kbulk-numa-mem1",
    ]  # fmt: skip


def test_cpus_in_blocks_and_memory_only_nodes() -> None:
    assert [n.cpus for n in numa.layout(2, "2048", 5)] == [(0, 1, 2), (3, 4)]
    assert numa.layout(2, "2048", 5)[0].cpu_ranges() == ["0-2"]
    # One CPU, two nodes: node 1 is memory-only (no cpus= for it).
    nodes = numa.layout(2, "1G", 1)
    assert nodes[1].cpus == () and "cpus=" not in numa.qemu_args(nodes)[7]


@pytest.mark.parametrize(
    ("nodes", "memory", "smp", "message"),
    [
        (3, "1G", 2, "does not split evenly into 3 nodes"),
        (0, "1G", 2, "0 nodes; allowed: 1 to 16"),
        (2, "lots", 2, "expected a size such as 1G"),
        (2, "1G", 0, "at least one"),
    ],
)
def test_layout_rejects(nodes: int, memory: str, smp: int, message: str) -> None:
    with pytest.raises(numa.NumaError, match=message):
        numa.layout(nodes, memory, smp)


def test_memory_sizes() -> None:
    assert numa.memory_mib("1G") == 1024
    assert numa.memory_mib("512M") == numa.memory_mib("512") == 512
    assert numa.memory_mib("2GiB") == 2048


@pytest.mark.parametrize("arch", sorted(ARCHES))
def test_qemu_command_gets_the_nodes_on_every_arch(arch: str) -> None:
    boot = BootSpec(Path("/k/img"), Path("/k/initrd"), ["panic=-1"], memory="1G", smp=2)
    plain = qemu_command(get_arch(arch), boot, Accel.TCG).argv
    assert "-numa" not in plain
    with_nodes = BootSpec(boot.kernel, boot.initramfs, boot.cmdline, "1G", 2, numa_nodes=2)
    argv = qemu_command(get_arch(arch), with_nodes, Accel.TCG).argv
    smp = plain.index("-smp") + 1
    assert argv[:smp] == plain[:smp] and argv[smp + 1 : len(plain)] == plain[smp + 1 :]
    assert argv[len(plain) :] == numa.qemu_args(numa.layout(2, "1G", 2))
    assert argv[argv.index("-m") + 1] == "1G"  # the total stays -m
    # one socket per CPU, so no LLC spans two nodes (x86 WARNs about that)
    assert argv[argv.index("-smp") + 1] == "2,sockets=2,cores=1,threads=1"


def test_every_arch_says_what_a_numa_kernel_needs() -> None:
    for arch in ARCHES.values():
        assert arch.numa_kconfig.get("CONFIG_NUMA") == "y"
    # x86 reads QEMU's SRAT only with ACPI NUMA, which needs PCI
    assert ARCHES["x86_64"].numa_kconfig["CONFIG_X86_64_ACPI_NUMA"] == "y"
    assert ARCHES["x86_64"].numa_kconfig["CONFIG_PCI"] == "y"


def test_plan_sets_and_resets_the_policy_around_its_step_only(tmp_path: Path) -> None:
    ko = tmp_path / "kbulk_numa.ko"
    policy = MemPolicy(MemPolicyMode.INTERLEAVE, (1, 0))
    plan = render_plan([ModuleStep(ko, ["a=1"]), ModuleStep(ko, [], policy), ModuleStep(ko)])
    assert plan.splitlines()[1:] == [
        "insmod /kbulk/modules/kbulk_numa.ko a=1",
        "mempolicy interleave 0,1",
        "insmod /kbulk/modules/kbulk_numa.ko",
        "mempolicy default",
        "insmod /kbulk/modules/kbulk_numa.ko",
    ]


@pytest.mark.parametrize(
    ("mode", "nodes", "message"),
    [
        (MemPolicyMode.BIND, (), "at least one node"),
        (MemPolicyMode.PREFERRED, (0, 1), "exactly one node"),
        (MemPolicyMode.INTERLEAVE, (1, 1), "listed twice"),
        (MemPolicyMode.BIND, (-1,), "start at 0"),
    ],
)
def test_policy_rejects(mode: MemPolicyMode, nodes: tuple[int, ...], message: str) -> None:
    with pytest.raises(MemPolicyError, match=message):
        MemPolicy(mode, nodes)


def _spec(tmp_path: Path, boot: str, policy: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        "name: n\n"
        "modules:\n"
        "  load:\n"
        "    - kbulk_stress\n"
        "    - name: kbulk_numa\n"
        f"      mempolicy: {policy}\n"
        "boot:\n"
        f"{boot}"
    )
    return path


def test_spec_numa_and_mempolicy_load(tmp_path: Path) -> None:
    path = _spec(tmp_path, "  numa: {nodes: 2}\n", "{mode: preferred_many, nodes: [1]}")
    spec = load_spec(path, tmp_path)
    assert spec.boot.numa_nodes == 2
    assert spec.modules[0].mempolicy is None
    assert spec.modules[1].mempolicy == MemPolicy(MemPolicyMode.PREFERRED_MANY, (1,))


@pytest.mark.parametrize(
    ("boot", "policy", "where"),
    [
        ("  numa: {nodes: 2}\n", "{mode: bind, nodes: [2]}",
         ":6: modules: kbulk_numa: mempolicy node(s) [2] do not exist: boot.numa.nodes is 2"),
        ("  smp: 2\n", "{mode: bind, nodes: [0]}",
         ":6: modules: kbulk_numa: a mempolicy needs a NUMA guest; add boot: numa:"),
        ("  numa: {nodes: 2}\n", "{mode: bound, nodes: [0]}",
         ":6: mode: 'bound'; allowed: bind, interleave, preferred, preferred_many"),
        ("  numa: {nodes: 2}\n", "{mode: bind, nodes: [a]}",
         ":6: nodes: expected a list of node numbers"),
        ("  numa: {nodes: 2}\n", "{mode: preferred, nodes: [0, 1]}",
         ":6: nodes: preferred takes exactly one node"),
        ("  numa: {nodes: 2}\n", "{mode: bind}", ":6: mempolicy needs 'nodes'"),
        ("  numa: {nodez: 2}\n", "{mode: bind, nodes: [0]}", ":8: nodez: unknown key"),
        ("  numa: {nodes: 3}\n", "{mode: bind, nodes: [0]}",
         ":8: nodes: boot.numa: memory 1G (1024 MiB) does not split evenly into 3 nodes"),
        ("  memory: 1000M\n  numa: {nodes: 3}\n", "{mode: bind, nodes: [0]}",
         ":8: memory: boot.numa: memory 1000M (1000 MiB) does not split evenly"),
        ("  numa: {nodes: two}\n", "{mode: bind, nodes: [0]}", ":8: nodes: expected int"),
    ],
)  # fmt: skip
def test_spec_errors_name_line_and_key(tmp_path: Path, boot: str, policy: str, where: str) -> None:
    path = _spec(tmp_path, boot, policy)
    with pytest.raises(SpecError) as e:
        load_spec(path, tmp_path)
    assert str(e.value).startswith(f"{path}{where}"), str(e.value)


def test_numa_run_definition_asks_for_two_nodes_and_every_policy() -> None:
    spec = load_spec(REPO_ROOT / "configs" / "numa.yaml", REPO_ROOT)
    assert spec.boot.numa_nodes == 2
    modes = {m.mempolicy.mode for m in spec.modules if m.mempolicy is not None}
    assert modes == set(MemPolicyMode)
    assert any(m.mempolicy is None for m in spec.modules)  # the default policy as control


def test_a_failed_step_is_not_hidden_by_a_later_load_of_the_same_module() -> None:
    begin, end = (
        "kbulk-init: step begin insmod kbulk_numa ",
        "kbulk-init: step end insmod kbulk_numa",
    )
    lines = [
        begin, f"{end} rc=0",
        "kbulk-init: mempolicy bind 1 failed: Invalid argument",
        begin, f"{end} rc=-22 (not loaded: its mempolicy failed: Invalid argument)",
        "kbulk-init: mempolicy default",
        begin, f"{end} rc=0",
    ]  # fmt: skip
    assert module_steps(lines) == {"kbulk_numa": -22}
    assert module_steps([begin, f"{end} rc=0", begin]) == {"kbulk_numa": None}  # never ended
