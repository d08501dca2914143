"""What explain reads about the platform from a document (virtbench.analysis.platform), on
report headers as UnixBench prints them."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtbench.analysis.explain import explain
from virtbench.analysis.platform import meltdown
from virtbench.importers.unixbench import parse_text

REF = Path(__file__).resolve().parent / "data" / "unixbench-centos6-xen-pv.txt"


def _with(old: str, new: str) -> str:
    text = REF.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new)


def _env(text: str) -> dict[str, object]:
    return dict(explain(parse_text(text, "r.txt")).environment)


@pytest.mark.parametrize(("old", "new", "platform", "pv_possible"), [
    ("Machine: x86_64 (x86_64)", "Machine: aarch64 (unknown)", "unknown", "no"),
    ("Machine: x86_64 (x86_64)", "Machine: riscv64 (riscv64)", "unknown", "no"),
    ("Machine: x86_64 (x86_64)", "Machine: armv6l (unknown)", "bare-metal", "no"),
    ("2.6.32-504.23.4.el6.x86_64", "5.10.21-sunxi", "bare-metal", "no"),
    ("Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz", "QEMU Virtual CPU version 2.5+", "guest", "no"),
    ("2.6.32-504.23.4.el6.x86_64", "2.6.32-042stab093.5", "container", "no"),
    ("2.6.32-504.23.4.el6.x86_64", "2.6.18-194.el5xen", "guest", "yes"),
    ("OS: GNU/Linux", "OS: Darwin", "unknown", "no"),
    ("Machine: x86_64 (x86_64)", "Machine: x86_64 (x86_64)", "unknown", "yes"),
])
def test_platform_from_the_header(old: str, new: str, platform: str, pv_possible: str) -> None:
    env = _env(_with(old, new))
    assert env["env.platform"] == platform
    assert env["env.pv_possible"] == pv_possible


@pytest.mark.parametrize(("kernel", "xenlinux"), [
    ("2.6.18-274.el5xen", True), ("2.6.16-xenU", True), ("2.6.26-2-xen-686", True),
    ("2.6.32-5-xen-amd64", True), ("3.0.101-63-xen", True), ("2.6.21.7-2.fc8xen", True),
    ("2.6.32-504.23.4.el6.x86_64", False), ("4.14.48-1-pserver", False),
])
def test_a_xenlinux_kernel_is_a_pv_guest_whatever_the_scores(kernel: str,
                                                              xenlinux: bool) -> None:
    # The HVM-like scores (synthesized from the published HVM figures): only the kernel says PV.
    hvm = (REF.parent / "unixbench-xen-hvm-synthesized.txt").read_text(encoding="utf-8")
    text = hvm.replace("2.6.32-504.23.4.el6.x86_64", kernel)
    ex = explain(parse_text(text, "r.txt"))
    rules = {f.rule for f in ex.findings}
    assert ("xen-pv-kernel" in rules) is xenlinux, rules
    assert (ex.environment["env.guest_kind"] == "xen-pv") is xenlinux


def test_pv_verdict_follows_the_architecture() -> None:
    rules = {f.rule for f in explain(parse_text(REF.read_text(), "r.txt")).findings}
    assert "pv-kernel-entry" in rules
    arm = _with("Machine: x86_64 (x86_64)", "Machine: aarch64 (unknown)")
    rules = {f.rule for f in explain(parse_text(arm, "r.txt")).findings}
    assert not rules & {"pv-kernel-entry", "pv-kernel-entry-32"}
    assert "slow-syscalls" in rules  # said, without the PV claim


def test_load_from_unixbench_build_is_not_a_busy_host() -> None:
    build = _with("load average: 0.18, 0.30, 0.16", "load average: 2.53, 0.78, 0.27")
    ex = explain(parse_text(build, "r.txt"))
    assert ex.environment["env.busy"] == "build"
    assert {"unixbench-build-load"} <= {f.rule for f in ex.findings}
    assert "busy-host" not in {f.rule for f in ex.findings}
    busy = _with("load average: 0.18, 0.30, 0.16", "load average: 0.85, 0.75, 0.73")
    ex = explain(parse_text(busy, "r.txt"))
    rules = {f.rule for f in ex.findings}
    assert "busy-host" in rules and "pv-kernel-entry" not in rules


def test_short_run_and_what_is_unknown() -> None:
    text = REF.read_text().replace(", 7 samples)", ", 1 samples)").replace(
        ", 2 samples)", ", 1 samples)")
    ex = explain(parse_text(text, "r.txt"))
    assert "short-run" in {f.rule for f in ex.findings}
    assert any("detect report" in u for u in ex.unknown)
    assert any(k.startswith("architecture x86-64") for k in ex.known)


def test_short_run_is_judged_against_each_tests_default() -> None:
    # UnixBench keeps 7 samples of a 10-second test and 2 of a long one (20-60 s): one
    # sample of the 10-second System Call Overhead is short, 2 samples of 3D gears are not.
    def rules(body: str) -> set[str]:
        text = ("Benchmark Run: Mon Nov 21 2022 14:03:11 - 14:04:35\n"
                "4 CPUs in system; running 1 parallel copy of tests\n\n" + body)
        return {f.rule for f in explain(parse_text(text, "r.txt")).findings}
    assert "short-run" not in rules("3D graphics: gears   114.5 fps   (20.2 s, 2 samples)\n")
    assert "short-run" not in rules("Execl Throughput   2308.0 lps   (29.8 s, 2 samples)\n")
    assert "short-run" in rules("System Call Overhead  3789860.2 lps   (10.0 s, 1 samples)\n")
    assert "short-run" in rules("Execl Throughput   2308.0 lps   (29.8 s, 1 samples)\n")
    full = explain(parse_text(REF.read_text(), "r.txt"))
    assert full.environment["env.short_run"] == "no"


def test_guest_advice_only_on_a_guest() -> None:
    # slow-process-ops on a 2-vCPU guest: the vCPU advice is added only where the document
    # shows a guest (here a QEMU virtual CPU).
    text = _with("Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz", "QEMU Virtual CPU version 2.5+")
    guest = explain(parse_text(text, "r.txt"))
    assert guest.environment["env.platform"] == "guest"
    unknown = explain(parse_text(REF.read_text(), "r.txt"))
    assert not any(f.virtualization_advice for f in unknown.findings)


@pytest.mark.parametrize(("model", "state"), [
    ("AMD EPYC 7551 32-Core Processor", "not affected"),
    ("Intel(R) Xeon(R) Platinum 8269CY CPU @ 2.50GHz", "not affected"),
    ("Intel(R) Xeon(R) Gold 6140 CPU @ 2.30GHz", "affected"),
    ("Intel(R) Core(TM) i5-10210U CPU @ 1.60GHz", "not affected"),
    ("Intel(R) Core(TM) i5-8259U CPU @ 2.30GHz", "affected"),
    ("Intel(R) Xeon(R) CPU E5-2676 v3 @ 2.40GHz", "affected"),
    ("QEMU Virtual CPU version 2.5+", "unknown"),
    (None, "unknown"),
])
def test_meltdown_by_cpu_generation(model: str | None, state: str) -> None:
    assert meltdown(model)[0] == state


def test_the_detect_report_decides_where_present() -> None:
    from virtbench.probes.model import DetectReport, Layer

    run = parse_text(REF.read_text(), "r.txt")
    run.environment.virtualization = DetectReport(
        layers=[Layer("hardware", "bare-metal")], summary="bare metal")
    ex = explain(run)
    assert ex.environment["env.platform"] == "bare-metal"
    assert ex.environment["env.pv_possible"] == "no"
    assert not {f.rule for f in ex.findings} & {"pv-kernel-entry", "pv-kernel-entry-32"}
    assert any(k.startswith("detect report") for k in ex.known)
    run.environment.virtualization = DetectReport(
        layers=[Layer("hypervisor", "xen", "pv")], summary="xen (pv)")
    ex = explain(run)
    assert ex.environment["env.platform"] == "guest"
    assert {"xen-pv", "pv-kernel-entry"} <= {f.rule for f in ex.findings}
