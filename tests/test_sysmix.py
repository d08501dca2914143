from __future__ import annotations

import subprocess

import pytest

from virtbench.errors import UsageError
from virtbench.experiments import fixedwork, programs
from virtbench.experiments.fixedwork import parse_kv_line, parse_sysmix

CAPTURED = (
    "SYSMIX|units=4348|elapsed=1.000194|syscalls=1856596|user_iters=267723752|p50_ns=260|"
    "p90_ns=324|p99_ns=372|max_ns=89933|mean_ns=272.2|user_s=0.600048|sys_s=0.400092|"
    "in_call_s=0.505317|user=61574|sys=427|call=read4k\n"
)


def test_parse_captured_output() -> None:
    out = parse_sysmix(CAPTURED)
    assert out.seconds == 1.000194
    assert out.metrics["p99_ns"] == 372
    assert out.metrics["units_per_s"] == pytest.approx(4348 / 1.000194)
    assert out.metrics["syscalls_per_s"] == pytest.approx(1856596 / 1.000194)
    assert "call" not in out.metrics  # not a number
    with pytest.raises(ValueError, match="no SYSMIX line"):
        parse_sysmix("COUNT|1|1|lps|1.0\n")
    assert parse_kv_line("x\nCALIB|user=5|sys=2\n", "CALIB") == {"user": "5", "sys": "2"}


def run_sysmix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(programs.build("sysmix")), *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_calibrated_ratio_holds() -> None:
    """Calibration makes system calls the asked share of a unit at full speed (checked on
    the calibrated costs, which use medians and so survive other load on the machine), and
    the kernel's accounting of a real run moves the same way."""
    shares = {}
    for fraction in (0.1, 0.6):
        cal = fixedwork.calibrate_sysmix(fraction)
        assert cal.user > 0 and cal.sys > 0
        planned = cal.sys * cal.t_sys_ns / (cal.sys * cal.t_sys_ns + cal.user * cal.t_user_ns)
        assert planned == pytest.approx(fraction, abs=0.1)
        proc = run_sysmix("-u", str(cal.user), "-s", str(cal.sys), "-t", "0.4")
        out = parse_sysmix(proc.stdout)
        m = out.metrics
        assert 0.39 < out.seconds < 0.8
        assert m["p50_ns"] <= m["p90_ns"] <= m["p99_ns"] <= m["max_ns"]
        assert cal.t_sys_ns / 3 < m["p50_ns"] < cal.t_sys_ns * 3
        assert m["syscalls"] == m["units"] * cal.sys
        # The kernel's split, on a fixed amount of work (0.25 s of CPU at the calibrated
        # costs): its timer-tick samples are then as many on a busy machine as on an idle
        # one. (Over the 0.4 s above, a busy machine gave the loop ~0.06 s of CPU, 15 ticks:
        # 0.13 was seen at fraction 0.6, against 0.09 at 0.1.)
        unit_ns = cal.sys * cal.t_sys_ns + cal.user * cal.t_user_ns
        work = parse_sysmix(run_sysmix("-u", str(cal.user), "-s", str(cal.sys), "-n",
                                       str(max(1, round(0.25e9 / unit_ns)))).stdout).metrics
        shares[fraction] = work["sys_s"] / max(work["sys_s"] + work["user_s"], 1e-9)
    # The kernel's split is tick-sampled and counts the clock reads as user time: only its
    # direction is asserted.
    assert shares[0.1] + 0.05 < shares[0.6], shares


def test_fixed_work_counts_exactly() -> None:
    out = parse_sysmix(run_sysmix("-u", "1000", "-s", "7", "-n", "321").stdout)
    assert out.metrics["units"] == 321
    assert out.metrics["syscalls"] == 321 * 7
    assert out.metrics["user_iters"] == 321 * 1000


@pytest.mark.parametrize("args,message", [
    (["-u", "0", "-s", "0", "-n", "1"], "needs some work"),
    (["--calibrate", "1.5"], "bad --calibrate"),
    (["--bogus"], "bad argument"),
    (["-u", "1", "-s", "1"], "give -n UNITS or -t SECONDS"),
    (["--call", "fork", "-u", "1", "-s", "1", "-n", "1"], "unknown --call"),
])
def test_bad_arguments(args: list[str], message: str) -> None:
    proc = run_sysmix(*args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("workload,count", [("integer", 200_000), ("float", 5)])
def test_suite_kernels_run_fixed_work(workload: str, count: int) -> None:
    """integer/float are the suite's own Dhrystone/Whetstone run with ``-n``: exactly the
    asked number of loops (Dhrystone reports it) in a measured time."""
    cmd = fixedwork.make_workload(workload, iterations=count)
    assert cmd.args == ("-n", str(count))
    proc = subprocess.run([str(programs.build(cmd.program)), *cmd.args], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = cmd.parse(proc.stdout)
    assert 0 < out.seconds < 30
    if workload == "integer":
        assert out.metrics["count"] == count
    else:
        assert out.metrics["count"] > 0  # MWIPS
    bad = subprocess.run([str(programs.build(cmd.program)), "-n", "0"], capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 2 and "bad" in bad.stderr


def test_unknown_workload_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown workload 'nosuch'"):
        fixedwork.make_workload("nosuch")
    with pytest.raises(UsageError, match="--iterations must be > 0"):
        fixedwork.make_workload("integer", iterations=-5)
