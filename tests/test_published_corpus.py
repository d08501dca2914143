"""The published UnixBench reports of ``tests/data/published/`` (issue 14): every one imports,
the index recomputed from the printed scores matches the printed one within rounding, and
explain's verdict on the Xen PV question agrees with the platform its author stated;
bare-metal reports get no virtualization advice. ``bench/explain_corpus.py`` prints the
confusion table."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from virtbench.analysis.explain import explain
from virtbench.importers.unixbench import parse_file_all

PUBLISHED = Path(__file__).resolve().parent / "data" / "published"
META = list(csv.DictReader(
    (PUBLISHED / "provenance.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"))
PV_RULES = {"pv-kernel-entry", "pv-kernel-entry-32", "xen-pv"}
# Reports explain gets wrong on the PV question, and why. The score over the corpus must stay
# at 95% or more (test_pv_question_score); a new miss has to be understood and listed here.
KNOWN_PV_MISSES = {
    "blog-linode-512-2010-excerpt.txt": "no header: without the i686 architecture the 32-bit "
    "PV signature (context1 0.10x, fork/exec 0.48x) cannot be told from a 2-vCPU KVM guest",
}
VIRT_RULES = PV_RULES | {"emulated-disk", "emulated-cpu", "steal", "slow-clocksource"}


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
    assert {"x86_64", "i686", "aarch64", "armv7l", "armv6l"} <= {m["arch"] for m in META}


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
            assert "vCPU" not in " ".join(f.advice for f in ex.findings)
        assert ex.unknown or ex.known


def test_pv_question_score() -> None:
    scored = [m for m in META if m["class"] != "vps-unknown"]
    assert len(scored) - len(KNOWN_PV_MISSES) >= 0.95 * len(scored)


def test_the_32_bit_signature_needs_the_architecture() -> None:
    # The Linode excerpt with the header line its author left out (32-bit CentOS): the
    # 32-bit rule recognises it. The header is added here, the numbers are the author's.
    text = (PUBLISHED / "blog-linode-512-2010-excerpt.txt").read_text(encoding="utf-8")
    from virtbench.importers.unixbench import parse_reports

    run = parse_reports("   Machine: i686 (i386)\n" + text, "linode.txt")[0]
    rules = {f.rule for f in explain(run).findings}
    assert "pv-kernel-entry-32" in rules and "slow-process-ops" not in rules, rules
