"""The published UnixBench reports of ``tests/data/published/`` (issue 14): every one imports,
the index recomputed from the printed scores matches the printed one within rounding, and
explain's verdict on the Xen PV question agrees with the platform its author stated;
bare-metal reports get no virtualization advice. ``bench/explain_corpus.py`` prints the
confusion table."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from virtbench.analysis.explain import explain
from virtbench.importers.unixbench import parse_file_all, parse_reports

PUBLISHED = Path(__file__).resolve().parent / "data" / "published"
META = list(csv.DictReader(
    (PUBLISHED / "provenance.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"))
PV_RULES = {"pv-kernel-entry", "pv-kernel-entry-32", "xen-pv", "xen-pv-kernel"}
# Reports explain gets wrong on the PV question, and why. The score over the corpus must stay
# at 95% or more (test_pv_question_score); a new miss has to be understood and listed here.
KNOWN_PV_MISSES = {
    "blog-linode-512-2010-excerpt.txt": "no header: without the i686 architecture the 32-bit "
    "PV signature (context1 0.10x, fork/exec 0.48x) cannot be told from a 2-vCPU KVM guest",
}
VIRT_RULES = PV_RULES | {"emulated-disk", "emulated-cpu", "steal", "slow-clocksource"}
# Words of virtualization advice: none of them is said to a bare-metal machine.
VIRT_WORDS = re.compile(r"virtio|vCPU|\bHVM\b|\bPVH\b|\bsteal|nested|in a guest|the provider",
                        re.IGNORECASE)


def test_the_corpus_is_complete_and_has_provenance() -> None:
    files = {p.name for p in PUBLISHED.iterdir() if p.name != "provenance.tsv"}
    assert files == {m["file"] for m in META}
    assert len(META) >= 40
    for m in META:
        assert m["source"] and m["platform_as_stated"] and m["unixbench_version"], m["file"]
        assert m["class"] in {"bare-metal", "kvm", "xen-pv", "xen-hvm", "hyper-v", "openvz",
                              "cloud-vm", "vps-unknown"}, m["file"]
    classes = {m["class"] for m in META}
    assert {"bare-metal", "kvm", "xen-pv", "xen-hvm", "hyper-v", "openvz"} <= classes
    assert {"x86_64", "i686", "aarch64", "armv7l", "armv6l", "riscv64"} <= {m["arch"] for m in META}


@pytest.mark.parametrize("meta", META, ids=[m["file"] for m in META])
def test_published_report(meta: dict[str, str]) -> None:
    runs = parse_file_all(PUBLISHED / meta["file"])
    assert runs and all(r.sections for r in runs)
    for run in runs:
        for sec in run.sections:
            assert sec.tests and all(t.score is not None or t.status == "failed"
                                     for t in sec.tests)
        checked = [n for n in run.notes if "recomputed" in n]
        printed = any(s.index_tests for s in run.sections)
        assert checked or not printed
        assert all("agrees within rounding" in n for n in checked), checked
        ex = explain(run)
        rules = {f.rule for f in ex.findings}
        if meta["file"] in KNOWN_PV_MISSES:
            assert meta["class"] == "xen-pv" and not rules & PV_RULES
        elif meta["class"] == "xen-pv":
            assert rules & PV_RULES, (meta["file"], rules)
        elif meta["class"] != "vps-unknown":
            assert not rules & PV_RULES, (meta["file"], rules)
        if meta["class"] == "bare-metal":
            assert not rules & VIRT_RULES, (meta["file"], rules)
            assert not any(f.virtualization_advice for f in ex.findings)
            advice = " ".join(f.advice for f in ex.findings)
            assert not VIRT_WORDS.search(advice), (meta["file"], VIRT_WORDS.findall(advice))
        assert ex.unknown or ex.known


def test_pv_question_score() -> None:
    scored = [m for m in META if m["class"] != "vps-unknown"]
    assert len(scored) - len(KNOWN_PV_MISSES) >= 0.95 * len(scored)


def test_the_32_bit_signature_needs_the_architecture() -> None:
    # The Linode excerpt with the header lines its author left out but stated in prose (32-bit
    # CentOS on an L5630): the 32-bit rule recognises it. The header is added here, the
    # numbers are the author's.
    text = (PUBLISHED / "blog-linode-512-2010-excerpt.txt").read_text(encoding="utf-8")
    header = ("   Machine: i686 (i386)\n"
              "   CPU 0: Intel(R) Xeon(R) CPU L5630 @ 2.13GHz (4266.8 bogomips)\n")
    run = parse_reports(header + text, "linode.txt")[0]
    rules = {f.rule for f in explain(run).findings}
    assert "pv-kernel-entry-32" in rules and "slow-process-ops" not in rules, rules


ZEN = ["blog-catcat-7950x-kvm-2023.txt", "blog-entrywan-epyc9124-kvm-2024.txt",
       "blog-hetzner-ax42-8700ge-2024.txt"]


@pytest.mark.parametrize("name", ZEN)
def test_amd_zen_shows_the_pv_pattern_and_is_not_judged(name: str) -> None:
    # Bare metal and KVM guests on AMD Zen have system calls AND fork/exec as slow relative
    # to Dhrystone as the Xen PV references: the scores cannot answer, and explain says so.
    (run,) = parse_file_all(PUBLISHED / name)
    ex = explain(run)
    one = ex.sections[1]
    assert isinstance(one["syscall_ratio"], float) and one["syscall_ratio"] < 0.4
    assert isinstance(one["process_ratio"], float) and one["process_ratio"] < 0.33
    assert ex.environment["env.pv_signature"] == "unreliable"
    slow = next(f for f in ex.findings if f.rule == "slow-syscalls")
    assert "AMD Zen" in slow.message and "cannot tell Xen PV apart" in slow.message
    assert not {f.rule for f in ex.findings} & PV_RULES
    # The same scores on a CPU the corpus calibrates (an Intel Xeon) are judged PV: the CPU
    # family is what withholds the verdict.
    assert run.environment.cpu_model
    run.environment.cpu_model = "Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz"
    assert "pv-kernel-entry" in {f.rule for f in explain(run).findings}



def test_without_a_cpu_model_a_report_of_the_zen_era_is_not_judged() -> None:
    # The KVM guest on a Ryzen 9 7950X without its header (what a reader copies when the top
    # scrolled away): nothing rules a Zen CPU out, so no PV verdict, and explain says why.
    text = (PUBLISHED / "blog-catcat-7950x-kvm-2023.txt").read_text(encoding="utf-8")
    headless = text[text.index("Benchmark Run:"):]
    (run,) = parse_reports(headless, "headless.txt")
    ex = explain(run)
    assert ex.environment["env.pv_signature"] == "unreliable"
    slow = next(f for f in ex.findings if f.rule == "slow-syscalls")
    assert "names no CPU model" in slow.message and "2023" in slow.message
    assert not {f.rule for f in ex.findings} & PV_RULES
    # The same scores dated before Zen existed are judged.
    (old,) = parse_reports(headless.replace("Oct 08 2023", "Oct 08 2015"), "old.txt")
    assert "pv-kernel-entry" in {f.rule for f in explain(old).findings}
