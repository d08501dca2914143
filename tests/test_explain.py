from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from unixbench_runs import (
    HVM_INDEX,
    PV_INDEX,
    REFERENCE_SCORES,
    hvm_run,
    make_run,
    make_section,
    make_test,
    pv_run,
    reference_run,
)
from virtbench.analysis import explain as ex
from virtbench.cli import explain as cli_explain
from virtbench.errors import UsageError
from virtbench.results.model import Environment, ExperimentResult, Section

ROOT = Path(__file__).resolve().parent.parent


def gmean(*values: float) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def rules_fired(run: Any, against: Any = None) -> set[str]:
    return {f.rule for f in ex.explain(run, against).findings}


def test_pv_profile_is_flagged_with_hand_checked_ratio() -> None:
    result = ex.explain(pv_run())
    m = result.sections[1]
    ke = gmean(208.2, 293.4, 160.2, 208.8, 310.6)
    cpu = gmean(2023.7, 456.6)
    assert m["kernel_entry_ratio"] == pytest.approx(ke / cpu, rel=1e-9)
    assert m["kernel_entry_ratio"] == pytest.approx(0.2386, abs=1e-4)
    assert m["syscall_ratio"] == pytest.approx(gmean(208.2, 293.4) / cpu, rel=1e-9)
    pv = [f for f in result.findings if f.rule == "pv-kernel-entry"]
    assert len(pv) == 1 and pv[0].severity == "high" and pv[0].copies == 1
    assert "0.24x" in pv[0].message and "context1 160.2" in pv[0].message
    assert "HVM or PVH" in pv[0].advice
    assert pv[0].evidence["kernel_entry_ratio"] == pytest.approx(0.2386, abs=1e-4)
    # The PV run's file and shell tests are not blamed on their own.
    assert "file-vs-cpu" not in rules_fired(pv_run())
    assert "slow-process-ops" not in rules_fired(pv_run())


def test_healthy_hvm_profile_is_not_flagged() -> None:
    result = ex.explain(hvm_run())
    assert result.sections[1]["kernel_entry_ratio"] == pytest.approx(
        gmean(1336.9, 1055.5, 682.3, 912.8, 801.9) / gmean(2017.5, 456.6), rel=1e-9)
    assert result.sections[1]["kernel_entry_ratio"] > 0.9  # type: ignore[operator]
    assert [f.rule for f in result.findings] == []
    assert "No findings" in ex.format_text(hvm_run(), result)


def test_this_machines_reference_is_not_called_paravirtualized() -> None:
    result = ex.explain(reference_run())
    one, two = result.sections[1], result.sections[2]
    # The nested micro-VM: fork/exec/context switches are slow, system calls are not.
    assert 0.25 < one["kernel_entry_ratio"] < 0.4  # type: ignore[operator]
    assert one["syscall_ratio"] > 0.55  # type: ignore[operator]
    fired = {(f.rule, f.copies) for f in result.findings}
    assert not any(rule == "pv-kernel-entry" for rule, _ in fired)
    assert ("slow-process-ops", 1) in fired
    # 2 copies on 2 CPUs: Dhrystone 84057294.7 / (2 * 48547976.6), Whetstone alike.
    d = REFERENCE_SCORES[2]["dhry2reg"] / (2 * REFERENCE_SCORES[1]["dhry2reg"])
    w = REFERENCE_SCORES[2]["whetstone-double"] / (2 * REFERENCE_SCORES[1]["whetstone-double"])
    assert two["scaling_cpu"] == pytest.approx(gmean(d, w), rel=1e-9)
    assert "poor-cpu-scaling" not in {r for r, _ in fired}


def test_against_ratios_hand_checked() -> None:
    result = ex.explain(pv_run(), hvm_run())
    rows = {r["test"]: r for r in result.comparison[1]}
    assert rows["syscall"]["ratio"] == pytest.approx(208.2 / 1336.9, rel=1e-9)
    assert rows["pipe"]["ratio"] == pytest.approx(293.4 / 1055.5, rel=1e-9)
    assert rows["dhry2reg"]["ratio"] == pytest.approx(2023.7 / 2017.5, rel=1e-9)
    assert rows["syscall"]["kind"] == "index"
    # Tests the other run lacks have no ratio, and are not counted in any mean.
    assert rows["fstime"]["ratio"] is None and rows["fstime"]["against"] is None
    vs = result.comparison_metrics[1]
    assert vs["vs.cpu"] == pytest.approx(gmean(2023.7 / 2017.5, 1.0), rel=1e-9)
    ke = gmean(208.2 / 1336.9, 293.4 / 1055.5, 160.2 / 682.3, 208.8 / 912.8, 310.6 / 801.9)
    assert vs["vs.kernel_entry"] == pytest.approx(ke, rel=1e-9)
    assert vs["vs.file"] is None
    common = [t for t in PV_INDEX if t in HVM_INDEX]
    assert vs["vs.overall"] == pytest.approx(gmean(*(PV_INDEX[t] / HVM_INDEX[t] for t in common)))
    fired = {f.rule for f in result.findings}
    assert "vs-kernel-entry" in fired and "vs-cpu" not in fired
    # Mirror image.
    back = ex.explain(hvm_run(), pv_run())
    assert "vs-kernel-entry-better" in {f.rule for f in back.findings}
    assert "pv-kernel-entry" not in {f.rule for f in back.findings}
    text = ex.format_text(pv_run(), result, hvm_run())
    assert re.search(r"System Call Overhead\s+208\.2\s+1336\.9\s+0\.16x", text)


def test_against_a_run_with_other_copies_has_no_comparison() -> None:
    other = make_run([make_section(2, indexes=HVM_INDEX)])
    result = ex.explain(pv_run(), other)
    assert result.comparison == {}
    assert not any(f.rule.startswith("vs-") for f in result.findings)


def test_missing_and_failed_tests_are_handled() -> None:
    # Only CPU tests: no kernel-entry ratio, nothing claimed.
    only_cpu = make_run([make_section(1, indexes={"dhry2reg": 2000.0, "whetstone-double": 450.0})])
    result = ex.explain(only_cpu)
    assert result.sections[1]["kernel_entry_ratio"] is None
    assert result.findings == []
    # One kernel-entry test alone is not enough to blame the kernel.
    one_ke = make_run([make_section(1, indexes={"dhry2reg": 2000.0, "syscall": 100.0})])
    assert ex.explain(one_ke).sections[1]["kernel_entry_ratio"] is None
    # No CPU tests at all.
    no_cpu = make_run([make_section(1, indexes={"syscall": 100.0, "pipe": 100.0})])
    assert ex.explain(no_cpu).findings == []
    # Failed tests do not count; scores without an index get one from the baseline.
    section = make_section(1, indexes=PV_INDEX)
    for t in section.tests:
        if t.test == "syscall":
            t.status = "failed"
            t.score = None
            t.index = None
        if t.test == "pipe":
            t.index = None
            t.baseline = None
    xeon = Environment(cpu_model="Intel(R) Xeon(R) CPU E5-2683 v3 @ 2.00GHz")
    result = ex.explain(make_run([section], environment=xeon))
    m = result.sections[1]
    assert m["syscall_ratio"] == pytest.approx(293.4 / gmean(2023.7, 456.6), rel=1e-3)
    assert "pv-kernel-entry" in {f.rule for f in result.findings}
    # An empty run and a run without sections.
    assert ex.explain(make_run([Section(copies=1)])).findings == []
    assert ex.explain(make_run([])).sections == {}


def test_tests_recognised_by_unixbench_name() -> None:
    t = make_test("syscall", 1, index=208.2)
    t.test = "system-call-overhead"
    assert ex.canonical_id(t) == "syscall"


XEN_PV_REPORT: dict[str, Any] = {
    "layers": [{"kind": "hypervisor", "name": "xen", "variant": "pv", "confidence": 0.99}],
    "facts": {"clocksource": {"current": "xen", "available": ["xen", "tsc"]},
              "steal": {"percent": 0.4}},
}


def test_environment_xen_pv_and_clock_source() -> None:
    run = pv_run()
    run.environment.virtualization = XEN_PV_REPORT
    result = ex.explain(run)
    fired = [f.rule for f in result.findings]
    assert fired.count("xen-pv") == 1
    xen = next(f for f in result.findings if f.rule == "xen-pv")
    assert "xen (pv)" in xen.message and "HVM or PVH" in xen.advice and "0.24" in xen.message
    assert "slow-clocksource" not in fired and "steal" not in fired
    hpet = {"layers": [{"kind": "hypervisor", "name": "kvm"}],
            "facts": {"clocksource": {"current": "hpet", "available": ["hpet", "tsc", "acpi_pm"]},
                      "steal": {"percent": 12.5}, "cpu": {"smt": {"active": True}}}}
    healthy = hvm_run()
    healthy.environment.virtualization = hpet
    result = ex.explain(healthy)
    clock = next(f for f in result.findings if f.rule == "slow-clocksource")
    assert "clock source hpet: switch to tsc" in clock.advice
    assert "hpet tsc acpi_pm" in clock.message
    steal = next(f for f in result.findings if f.rule == "steal")
    assert "12.5%" in steal.message
    assert result.environment["env.smt"] == "on"


@pytest.mark.parametrize("report", [
    {"error": "detection failed: boom"},
    {"layers": "garbage", "facts": None},
    {"layers": [None, 3, {"kind": "container"}]},
    {"facts": {"clocksource": 3, "steal": {"percent": "lots"}, "cpu": []}},
    {},
])
def test_malformed_detect_reports_do_not_break_explain(report: dict[str, Any]) -> None:
    """Version-1 documents carried the report as a free-form mapping: whatever it held, the
    migration keeps what is valid and explain finds nothing to say about the rest."""
    doc = hvm_run().to_dict()
    doc["schema_version"] = 1
    doc["environment"]["virtualization"] = report
    run = type(hvm_run()).from_dict(doc)
    result = ex.explain(run)
    assert [f.rule for f in result.findings] == []
    assert result.environment["env.summary"] == "not detected"
    assert "env.clocksource" not in result.environment
    assert "env.steal_percent" not in result.environment


def test_poor_scaling_and_copies_over_cpus() -> None:
    one = make_section(1, indexes={"dhry2reg": 2000.0, "whetstone-double": 500.0})
    four = make_section(4, indexes={"dhry2reg": 2000.0 * 1.2, "whetstone-double": 500.0 * 1.2})
    run = make_run([one, four], environment=Environment(cpu_count=2, cpus_usable=2))
    result = ex.explain(run)
    m = result.sections[4]
    assert m["scaling_expected"] == 2.0
    assert m["scaling_cpu"] == pytest.approx(0.6)
    fired = {f.rule for f in result.findings}
    assert {"poor-cpu-scaling", "copies-over-cpus"} <= fired


def test_every_rule_is_documented_with_its_thresholds() -> None:
    doc = (ROOT / "docs" / "explain.md").read_text(encoding="utf-8")
    ids = [r.id for r in ex.RULES]
    assert len(ids) == len(set(ids))
    begin = doc.index("<!-- rules:begin")
    begin = doc.index("\n", begin) + 1
    end = doc.index("<!-- rules:end -->")
    assert doc[begin:end] == ex.rules_markdown()
    for rule in ex.RULES:
        assert f"`{rule.id}`" in doc, rule.id


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    cli_explain.register(parser)
    rc = cli_explain.run(parser.parse_args(argv))
    return rc, capsys.readouterr().out


def test_cli_json_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pv = pv_run().save(tmp_path / "pv.json")
    hvm = hvm_run().save(tmp_path / "hvm.json")
    rc, out = _cli([str(pv), "--against", str(hvm), "--json"], capsys)
    assert rc == 0
    doc = json.loads(out)
    assert doc["run"] == "xenpv" and doc["against"] == "xenhvm"
    assert {f["rule"] for f in doc["findings"]} >= {"pv-kernel-entry", "vs-kernel-entry"}
    assert "env.summary" not in doc["sections"]["1"]
    rc, out = _cli([str(hvm)], capsys)
    assert rc == 0 and "No findings" in out


def test_cli_rejects_experiments_and_missing_files(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    exp = ExperimentResult(experiment="postmark").save(tmp_path / "exp.json")
    with pytest.raises(UsageError, match="postmark experiment"):
        _cli([str(exp)], capsys)
    with pytest.raises(UsageError, match=r"nope\.json"):
        _cli([str(tmp_path / "nope.json")], capsys)


DETECT = ROOT / "tests" / "data" / "detect"


def _detected(case: str) -> dict[str, Any]:
    from virtbench.probes import detect

    report: dict[str, Any] = detect(str(DETECT / case)).to_dict()
    return report


def test_real_detect_reports_xen_pv_and_hvm_emulated() -> None:
    run = pv_run()
    run.environment.virtualization = _detected("xen-pv-domu")
    result = ex.explain(run)
    fired = [f.rule for f in result.findings]
    assert fired[:2] == ["xen-pv", "pv-kernel-entry"]  # the environment fact first
    xen = next(f for f in result.findings if f.rule == "xen-pv")
    assert xen.copies is None and "xen (pv)" in xen.message
    assert "Detected: xen (pv)." in result.findings[1].advice
    assert result.environment["env.clocksource"] == "xen"
    assert result.environment["env.pti"] == "no"  # meltdown: Not affected
    assert result.detect_advice and "Xen PV guest" in result.detect_advice[0]
    assert "Advice recorded by `virtbench detect`" in ex.format_text(run, result)
    healthy = hvm_run()
    healthy.environment.virtualization = _detected("xen-hvm-emulated")
    result = ex.explain(healthy)
    assert [f.rule for f in result.findings] == ["emulated-disk"]
    assert "ata_piix" in result.findings[0].message


@pytest.mark.parametrize("case", sorted(p.name for p in DETECT.iterdir() if p.is_dir()))
def test_every_detect_fixture_is_read_without_error(case: str) -> None:
    run = hvm_run()
    run.environment.virtualization = _detected(case)
    result = ex.explain(run)
    assert not any(f.rule == "pv-kernel-entry" for f in result.findings)
    assert result.environment["env.detected"] == "yes"


def test_busy_host_and_quick_runs_are_said_once() -> None:
    run = reference_run()
    run.environment.load_average = [1.6, 1.0, 0.5]  # 0.8 per usable CPU (2)
    run.mode = "quick"
    run.comparable = False
    result = ex.explain(run)
    rules = [f.rule for f in result.findings]
    assert rules.count("busy-host") == 1 and rules.count("not-comparable") == 1
    assert rules[0] == "busy-host"
    busy = result.findings[0]
    assert busy.copies is None and "1.60 on 2 usable CPUs" in busy.message
    run.environment.load_average = [0.9, 1.0, 0.5]  # 0.45 per CPU: below the threshold
    assert "busy-host" not in {f.rule for f in ex.explain(run).findings}


def test_against_table_does_not_narrow_the_findings() -> None:
    # The comparison table's name column width used to overwrite the wrap width, so every
    # finding after an --against table wrapped at ~37 columns.
    result = ex.explain(pv_run(), hvm_run())
    text = ex.format_text(pv_run(), result, hvm_run())
    finding = text[text.index("[HIGH]"):]
    body = [ln for ln in finding.splitlines() if ln.startswith("  ")]
    assert max(len(ln) for ln in body) > 80
    assert all(len(ln) <= 100 for ln in body)
