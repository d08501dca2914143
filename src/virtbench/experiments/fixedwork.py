"""Fixed-work workloads for the experiments: each instance does the same amount of work and
reports how many seconds it took (so slowdowns read directly as time ratios).

* ``sysmix`` - user computation alternating with system calls in a known ratio
  (``--sys-fraction``; see ``c/sysmix.c``), calibrated once, solo, at the start of an
  experiment; reports throughput and system-call latency percentiles.
* ``integer`` / ``float`` - fixed iteration counts of the suite's Dhrystone / Whetstone
  kernels (the suite's own programs, run with their fixed-work ``-n`` option).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.experiments import programs
from virtbench.experiments.instances import WorkloadCommand, WorkloadOutput

DEFAULT_SYS_FRACTION = 0.3
DEFAULT_UNITS = {"sysmix": 10_000, "integer": 100_000_000, "float": 1500}
"""Default fixed work, each about 2 s solo on a 2020s core: sysmix units of ~200 us CPU,
Dhrystone loops, Whetstone passes (``extra``: one pass runs every section once)."""


def parse_kv_line(text: str, tag: str) -> dict[str, str]:
    """The ``TAG|key=value|...`` line of a program's output."""
    for line in text.splitlines():
        if line.startswith(tag + "|"):
            fields = line.strip().split("|")[1:]
            return dict(f.split("=", 1) for f in fields if "=" in f)
    raise ValueError(f"no {tag} line")


def _floats(kv: dict[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in kv.items():
        try:
            out[k] = float(v)
        except ValueError:
            continue
    return out


def parse_sysmix(text: str) -> WorkloadOutput:
    metrics = _floats(parse_kv_line(text, "SYSMIX"))
    seconds = metrics["elapsed"]
    if seconds > 0 and "units" in metrics:
        metrics["units_per_s"] = metrics["units"] / seconds
        metrics["syscalls_per_s"] = metrics.get("syscalls", 0.0) / seconds
    return WorkloadOutput(seconds=seconds, metrics=metrics)


def parse_count(text: str) -> WorkloadOutput:
    """The suite's ``COUNT|<count>|<timebase>|<unit>|<elapsed>`` line."""
    for line in text.splitlines():
        if line.startswith("COUNT|"):
            parts = line.strip().split("|")
            return WorkloadOutput(seconds=float(parts[4]), metrics={"count": float(parts[1])})
    raise ValueError("no COUNT line")


@dataclass(frozen=True)
class SysmixCalibration:
    fraction: float
    user: int
    """User iterations per unit."""
    sys: int
    """System calls per unit."""
    t_user_ns: float
    t_sys_ns: float
    call: str

    def to_dict(self) -> dict[str, float | int | str]:
        return {"fraction": self.fraction, "user_per_unit": self.user,
                "sys_per_unit": self.sys, "t_user_ns": self.t_user_ns,
                "t_sys_ns": self.t_sys_ns, "call": self.call}


def check_fraction(fraction: float) -> float:
    if not 0.0 <= fraction <= 0.95:
        raise UsageError(f"--sys-fraction must be between 0 and 0.95 (got {fraction:g})")
    return fraction


def calibrate_sysmix(fraction: float, call: str = "read4k") -> SysmixCalibration:
    """Run ``sysmix --calibrate`` solo on the host (about 0.3 s)."""
    check_fraction(fraction)
    binary = programs.build("sysmix")
    proc = subprocess.run([str(binary), "--calibrate", f"{fraction:.4f}", "--call", call],
                          capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise EnvironmentUnsupported(f"sysmix calibration failed: {proc.stderr.strip()}")
    kv = parse_kv_line(proc.stdout, "CALIB")
    return SysmixCalibration(fraction=fraction, user=int(kv["user"]), sys=int(kv["sys"]),
                             t_user_ns=float(kv["t_user_ns"]), t_sys_ns=float(kv["t_sys_ns"]),
                             call=kv["call"])


def sysmix_command(cal: SysmixCalibration, *, units: int | None = None,
                   seconds: float | None = None) -> WorkloadCommand:
    if (units is None) == (seconds is None):
        raise ValueError("give units or seconds")
    amount = ("-n", str(units)) if units is not None else ("-t", f"{seconds:.3f}")
    return WorkloadCommand(
        name="sysmix", program="sysmix",
        args=("-u", str(cal.user), "-s", str(cal.sys), *amount, "--call", cal.call),
        parse=parse_sysmix)


@dataclass(frozen=True)
class FixedWorkload:
    name: str
    description: str
    make: Callable[[int | None, float], WorkloadCommand]
    """(iterations or None for the default, sys_fraction) -> command; may raise."""
    params: Callable[[], dict[str, object]] = dict


_CALIBRATIONS: dict[tuple[float, str], SysmixCalibration] = {}


def sysmix_calibration(fraction: float) -> SysmixCalibration:
    key = (fraction, "read4k")
    if key not in _CALIBRATIONS:
        _CALIBRATIONS[key] = calibrate_sysmix(fraction)
    return _CALIBRATIONS[key]


def _sysmix(iterations: int | None, fraction: float) -> WorkloadCommand:
    cal = sysmix_calibration(fraction)
    return sysmix_command(cal, units=iterations or DEFAULT_UNITS["sysmix"])


def _suite_program(name: str, program: str) -> Callable[[int | None, float], WorkloadCommand]:
    def make(iterations: int | None, fraction: float) -> WorkloadCommand:
        n = iterations or DEFAULT_UNITS[name]
        return WorkloadCommand(name=name, program=program, args=("-n", str(n)),
                               parse=parse_count)
    return make


def _postmark(iterations: int | None, fraction: float) -> WorkloadCommand:
    """Postmark (``docs/io.md``) with ``io postmark``'s defaults; iterations = transactions."""
    from virtbench.experiments import postmark

    params = postmark.with_overrides(postmark.PRESETS["default"], transactions=iterations)
    cmd: WorkloadCommand = postmark.workload_command(params)
    return cmd


SEQREAD_DEFAULT_MIB = 512


def _seqread(iterations: int | None, fraction: float) -> WorkloadCommand:
    """seqread (``docs/io.md``) of a file of ``iterations`` MiB (default 512), written in the
    instance's directory and dropped from the page cache with posix_fadvise before the read."""
    from virtbench.experiments import seqread

    cmd: WorkloadCommand = seqread.workload_command(
        (iterations or SEQREAD_DEFAULT_MIB) * seqread.MiB)
    return cmd


WORKLOADS: dict[str, FixedWorkload] = {
    "sysmix": FixedWorkload("sysmix", "user computation + system calls (--sys-fraction)",
                            _sysmix),
    "integer": FixedWorkload("integer", "fixed Dhrystone 2.1 loops (the suite's dhry2reg)",
                             _suite_program("integer", "dhry2reg")),
    "float": FixedWorkload("float", "fixed Whetstone passes (the suite's whetstone-double)",
                           _suite_program("float", "whetstone-double")),
    "postmark": FixedWorkload("postmark", "Postmark small-file transactions (iterations = "
                              "transactions)", _postmark),
    "seqread": FixedWorkload("seqread", "cold sequential read of a file (iterations = MiB)",
                             _seqread),
}


def workload_names() -> list[str]:
    return list(WORKLOADS)


def make_workload(name: str, *, iterations: int | None = None,
                  sys_fraction: float = DEFAULT_SYS_FRACTION) -> WorkloadCommand:
    """The command one instance runs; ``iterations`` overrides the default fixed work."""
    try:
        spec = WORKLOADS[name]
    except KeyError:
        raise UsageError(f"unknown workload {name!r} (choose from {', '.join(WORKLOADS)})") \
            from None
    if iterations is not None and iterations <= 0:
        raise UsageError(f"--iterations must be > 0 (got {iterations})")
    check_fraction(sys_fraction)
    return spec.make(iterations, sys_fraction)
