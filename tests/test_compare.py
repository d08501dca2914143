"""``virtbench compare``: numbers checked by hand."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from clihelp import vb
from virtbench.analysis.compare import compare
from virtbench.analysis.welch import welch_log
from virtbench.results import model
from virtbench.store import dispose_engines

DATA = Path(__file__).resolve().parent / "data"
PV = DATA / "unixbench-centos6-xen-pv.txt"
HVM = DATA / "unixbench-xen-hvm-synthesized.txt"


@pytest.fixture(autouse=True)
def _fresh_engines() -> None:
    dispose_engines()


def test_welch_log_by_hand() -> None:
    # logs A = 0, 0.1, 0.2 and B = 0.3, 0.4, 0.5: d = 0.3, s² = 0.01 each side,
    # se = sqrt(0.01/3 + 0.01/3) = 0.0816497, t = 3.6742, Welch df = 4,
    # t(0.975, 4) = 2.776445: CI = exp(0.3 ± 0.226696) = [1.07606, 1.69333];
    # two-sided p for t = 3.6742 with 4 df = 0.02131.
    a = [math.exp(x) for x in (0.0, 0.1, 0.2)]
    b = [math.exp(x) for x in (0.3, 0.4, 0.5)]
    r = welch_log(a, b)
    assert r is not None
    ratio, lo, hi, p = r
    assert ratio == pytest.approx(1.349859, abs=1e-6)
    assert lo == pytest.approx(1.07606, abs=1e-5)
    assert hi == pytest.approx(1.69333, abs=1e-5)
    assert p == pytest.approx(0.02131, abs=1e-5)
    assert welch_log(a, [5.0]) is None
    assert welch_log([2.0, 2.0], [2.0, 2.0]) == (1.0, 1.0, 1.0, 1.0)


def _test(test: str, passes: list[float], baseline: float = 10.0) -> model.TestResult:
    kept = sorted(passes)[len(passes) // 3:]
    score = math.exp(sum(math.log(x) for x in kept) / len(kept))
    return model.TestResult(
        test=test, name=test.upper(), unit="lps", copies=1,
        passes=[model.PassResult(score=p, elapsed=10.0) for p in passes],
        score=score, samples=len(kept), baseline=baseline, index=score / baseline * 10)


def _run(tests: list[model.TestResult], **kw: object) -> model.RunResult:
    run = model.RunResult(profile="unixbench-6", status="complete", **kw)  # type: ignore[arg-type]
    run.sections.append(model.Section(copies=1, tests=tests))
    return run


def test_compare_marks_only_changes_beyond_noise() -> None:
    e = math.exp
    # x: the hand-checked case above, plus a low pass UnixBench drops (floor(4/3) = 1).
    base = _run([
        _test("x", [e(-1.0), e(0.0), e(0.1), e(0.2)]),
        _test("y", [100.0, 100.1, 100.2]),
        model.TestResult(test="z", name="Z", unit="lps", copies=1, score=400.0,
                         baseline=10.0, index=400.0),
        _test("gone", [5.0, 5.0, 5.0]),
    ])
    other = _run([
        _test("x", [e(-2.0), e(0.3), e(0.4), e(0.5)]),
        _test("y", [101.0, 101.1, 101.2]),  # +1%: significant but under 2%
        model.TestResult(test="z", name="Z", unit="lps", copies=1, score=200.0,
                         baseline=10.0, index=200.0),
    ])
    comp = compare([base, other])
    rows = {t.test: t for t in comp.sections[0].tests}
    dx = rows["x"].deltas[1]
    assert dx is not None and dx.tested and dx.change == "better"
    assert dx.ratio == pytest.approx(1.349859, abs=1e-6)
    assert (dx.ci_low, dx.ci_high) == (pytest.approx(1.07606, abs=1e-5),
                                       pytest.approx(1.69333, abs=1e-5))
    assert dx.p_value == pytest.approx(0.02131, abs=1e-5)
    dy = rows["y"].deltas[1]
    # y: kept passes 100.1, 100.2 vs 101.1, 101.2: ratio sqrt(101.1 * 101.2 / (100.1 * 100.2))
    # = 1.009985, spread tiny so p is small, but 1% is under the 2% rule.
    assert dy is not None and dy.ratio == pytest.approx(1.009985, abs=1e-6)
    assert dy.p_value is not None and dy.p_value < 0.05 and dy.change == "same"
    dz = rows["z"].deltas[1]
    assert dz is not None and dz.ratio == 0.5 and not dz.tested
    assert dz.change == "worse-untested"
    dg = rows["gone"].deltas[1]
    assert dg is not None and dg.change == "missing" and dg.ratio is None
    # Geometric mean of index ratios over tests both have: (1.349859 * 1.009985 * 0.5)^(1/3)
    # = 0.681668^(1/3) = 0.880085.
    assert comp.sections[0].geomean_ratios[1] == pytest.approx(0.880085, abs=1e-6)
    assert comp.sections[0].geomean_tests[1] == 3
    assert comp.warnings == []


def test_warnings_for_incomparable_runs() -> None:
    a = _run([_test("x", [1.0, 1.0, 1.0])])
    a.environment.compiler, a.environment.compiler_version = "gcc", "12.2"
    a.environment.cflags = ["-O2"]
    b = _run([_test("x", [1.0, 1.0, 1.0])])
    b.profile = "unixbench-5.1.3"
    b.mode = "quick"
    b.comparable = False
    b.environment.compiler, b.environment.compiler_version = "gcc", "12.2"
    b.environment.cflags = ["-O3", "-march=native"]
    b.sections.append(model.Section(copies=2, tests=[]))
    w = " | ".join(compare([a, b]).warnings)
    assert "different profiles" in w
    assert "different modes" in w
    assert "different copies (1,2 vs 1)" in w
    assert "different compiler flags (-O3 -march=native vs -O2)" in w
    assert "not comparable" in w


def test_all_cpu_sections_are_paired_with_a_warning() -> None:
    a = _run([_test("x", [1.0, 1.0, 1.0])])
    a.sections.append(model.Section(copies=16, tests=[_test("x", [16.0, 16.0, 16.0])]))
    b = _run([_test("x", [1.0, 1.0, 1.0])])
    b.sections.append(model.Section(copies=2, tests=[_test("x", [4.0, 4.0, 4.0])]))
    comp = compare([a, b])
    assert [s.copies for s in comp.sections] == [[1, 1], [16, 2]]
    d = comp.sections[1].tests[0].deltas[1]
    assert d is not None and d.ratio == pytest.approx(0.25)
    assert any("2-copy section with the baseline's 16-copy" in w for w in comp.warnings)


def test_compare_pv_and_hvm_reports_from_files() -> None:
    rc, out, err = vb("compare", str(PV), str(HVM), "--json")
    assert rc == 0, err
    comp = json.loads(out)
    rows = {t["test"]: t for t in comp["sections"][0]["tests"]}
    # HVM syscall index 1336.9 vs PV 208.2: scores 2005350.0 / 312263.9 = 6.4220.
    assert rows["syscall"]["deltas"][1]["ratio"] == pytest.approx(6.4220, abs=1e-4)
    assert rows["syscall"]["deltas"][1]["change"] == "better-untested"
    # Dhrystone 23544225.0 / 23617050.2 = 0.99692: within 10%, not marked.
    assert rows["dhry2reg"]["deltas"][1]["ratio"] == pytest.approx(0.99692, abs=1e-5)
    assert rows["dhry2reg"]["deltas"][1]["change"] == "none"
    sec = comp["sections"][0]
    assert sec["index_scores"][0] == pytest.approx(440.94, abs=0.01)
    assert sec["index_scores"][1] == pytest.approx(790.80, abs=0.01)
    assert sec["geomean_ratios"][1] == pytest.approx(790.80 / 440.94, abs=1e-3)
    assert comp["warnings"] == []
    # Plain table and markdown carry the same numbers.
    rc, out, _ = vb("compare", str(PV), str(HVM))
    assert rc == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("System Call Overhead"))
    assert "312263.9" in line and "2005350.0" in line and "6.422" in line
    rc, md, _ = vb("compare", str(PV), str(HVM), "--format", "markdown")
    assert rc == 0 and "| System Call Overhead | lps | 312263.9 | 208.2 | 2005350.0 | " \
        "1336.9 | 6.422 | +? untested |" in md


def test_compare_errors() -> None:
    rc, _, err = vb("compare", str(PV))
    assert rc == 2 and "at least two runs" in err
    rc, _, err = vb("compare", str(PV), "no-such-run")
    assert rc == 2 and "'no-such-run'" in err
    rc, _, err = vb("compare", str(PV), str(HVM), "--copies", "4")
    assert rc == 2 and "no 4-copy section" in err


def test_terminal_output_is_fitted_and_coloured(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    from virtbench.cli import main

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["compare", str(PV), str(HVM)]) == 0
    text = out.getvalue()
    assert "\x1b[" in text and "6.422" in text and "+? untested" in text
    assert max(len(re.sub(r"\x1b\[[0-9;]*m", "", ln)) for ln in text.splitlines()
               if not ln.startswith("beyond noise")) <= 160


def test_comparing_a_run_with_itself_warns() -> None:
    from virtbench.analysis.compare import compare as _compare
    from virtbench.importers.unixbench import parse_file

    pv = Path(__file__).resolve().parent / "data" / "unixbench-centos6-xen-pv.txt"
    a, b = parse_file(pv), parse_file(pv)
    comp = _compare([a, b])
    assert any("is the baseline itself" in w for w in comp.warnings)
    assert all(t.deltas[1] is not None and t.deltas[1].ratio == 1.0
               for t in comp.sections[0].tests)
