"""Every workload program runs briefly and reports a positive, plausible count."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from virtbench.workloads.build import PROGRAMS, BuildInfo, ensure_built
from virtbench.workloads.catalog import CATALOG, WorkloadSpec
from virtbench.workloads.output import Sample, parse_output
from virtbench.workloads.profiles import DEFAULT_PROFILE, get_profile

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")

SHORT = 0.5  # seconds per run: enough to count, short enough for the suite's budget


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> BuildInfo:
    # The session's shared compile cache (tests/conftest.py), so other tests reuse this build.
    cache = os.environ.get("VIRTBENCH_TEST_CACHE") or str(
        tmp_path_factory.getbasetemp() / "xdg-cache"
    )
    return ensure_built(get_profile(DEFAULT_PROFILE), cache_root=Path(cache) / "virtbench")


def run_spec(spec: WorkloadSpec, built: BuildInfo, workdir: Path, duration: float) -> Sample:
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        spec.argv(built.bin_dir, duration, workdir),
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,  # as the runner starts copies
    )
    assert proc.returncode == 0, proc.stderr
    return parse_output(proc.stdout)


AVAILABLE = [s for s in CATALOG.values() if s.program in PROGRAMS]


@pytest.mark.parametrize("spec", AVAILABLE, ids=[s.id for s in AVAILABLE])
def test_program_runs_briefly(spec: WorkloadSpec, built: BuildInfo, tmp_path: Path) -> None:
    duration = SHORT
    sample = run_spec(spec, built, tmp_path / "copy-0", duration)
    while sample.count == 0 and spec.program == "looper" and duration < 8:
        # One shell-script run (up to 16 concurrent scripts, ~9 execs each) can take longer
        # than a short pass on a busy 2-core machine: a zero count is valid, try longer.
        duration *= 2
        shutil.rmtree(tmp_path / "copy-0")
        sample = run_spec(spec, built, tmp_path / "copy-0", duration)
    assert sample.unit == spec.unit
    assert sample.timebase == spec.timebase
    assert sample.count > 0
    if spec.timebase != 0:
        # the program's own clock covers the timed loop, not much more
        assert duration * 0.95 <= sample.elapsed <= duration + 2.0
    # Plausible: at least half of the 1990s baseline machine, and not absurdly high.
    floor = spec.baseline / 2 if spec.baseline else (3.0 if spec.unit == "lpm" else 1000.0)
    assert floor < sample.rate < 1e12
    left = sorted(p.name for p in (tmp_path / "copy-0").iterdir())
    if spec.program == "looper":
        # only the temp files of the run killed at the deadline (the runner removes the dir)
        assert all(name.split(".")[0] in ("sort", "od", "grep", "wc") for name in left), left
        assert len(left) <= 4 * spec.concurrency
    else:
        assert left == []  # the program removed its files


def test_bad_arguments_fail_with_message(built: BuildInfo) -> None:
    for args in (["pipe"], ["pipe", "zero"], ["pipe", "-1"], ["dhry2reg", "1", "2"]):
        proc = subprocess.run(
            [str(built.bin_dir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        assert proc.returncode != 0
        assert proc.stdout == ""
        assert proc.stderr.strip(), args


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and "pytest" not in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("new_session", [True, False], ids=["runner-session", "shell-job"])
def test_looper_kills_the_late_run(built: BuildInfo, tmp_path: Path, new_session: bool) -> None:
    marker = f"29.{os.getpid()}{int(new_session)}"
    script = f"sleep {marker} & sleep {marker}; wait"
    proc = subprocess.run(
        [str(built.bin_dir / "looper"), "0.5", "/bin/sh", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        start_new_session=new_session,
    )
    assert proc.returncode == 0, proc.stderr
    sample = parse_output(proc.stdout)
    assert sample.count == 0  # the run never completed, so it does not count
    assert 0.45 <= sample.elapsed < 2.0
    deadline = time.monotonic() + 5
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_with(marker) == []


def test_looper_fails_on_failing_command(built: BuildInfo, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(built.bin_dir / "looper"), "2", "/bin/sh", "-c", "exit 3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and proc.stdout == ""
    assert "status 3" in proc.stderr
