"""``virtbench run`` as a user runs it: real processes, real workloads, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SRC, run_cli
from virtbench.results.model import RunResult


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nosuchtest"], "unknown test or group 'nosuchtest'"),
        (["run", "-c", "0"], "must be at least 1"),
        (["run", "-c", "two"], "not a whole number"),
        (["run", "--precision", "abc"], "not a precision"),
        (["run", "--precision", "90%"], "between 0 and 50%"),
        (["run", "--profile", "unixbench-4"], "invalid choice"),
        (["run", "--tmpdir", "/nonexistent/dir", "--quick", "fstime"], "not a directory"),
        (["run", "--quick", "--precision", "2%"], "not allowed with"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args: list[str], message: str) -> None:
    proc = run_cli(*args, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_quick_run_with_copies_json(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    proc = run_cli("run", "--quick", "syscall", "context1", "spawn", "-c", "1", "-c", "3",
                   "--json", "--no-detect", "-o", str(out), "--label", "purpose=test",
                   check=True)
    doc = json.loads(proc.stdout)
    run = RunResult.from_dict(doc)
    assert run == RunResult.from_dict(json.loads(out.read_text()))
    assert run.status == "complete" and run.mode == "quick" and not run.comparable
    assert run.labels == {"purpose": "test"}
    assert [s.copies for s in run.sections] == [1, 3]
    for section in run.sections:
        assert [t.test for t in section.tests] == ["syscall", "context1", "spawn"]
        for t in section.tests:
            assert t.status == "ok", t.error
            assert len(t.passes) == 2
            for p in t.passes:
                assert len(p.copies) == section.copies
                assert all(c.count > 0 and 0.5 < c.elapsed < 5 for c in p.copies)
            assert t.score is not None and t.score > 100  # even a slow box does 100+ lps
    env = run.environment
    assert env.compiler_version and env.cflags and env.workload_hash
    assert env.kernel == os.uname().release
    # the master copy is in the data dir too
    saved = list(Path(os.environ["XDG_DATA_HOME"], "virtbench", "results").glob("*.json"))
    assert any(json.loads(p.read_text())["id"] == run.id for p in saved)


def test_text_report_has_unixbench_layout() -> None:
    proc = run_cli("run", "--quick", "pipe", "-c", "1", "--no-detect", check=True)
    out = proc.stdout
    assert "Benchmark Run:" in out
    assert "running 1 parallel copy of tests" in out
    assert "System Benchmarks Index Values               BASELINE       RESULT    INDEX" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("Pipe Throughput"))
    # name padded to 40, value in 12 columns, unit padded to 5
    assert line[40] == " " and line[53:57] == " lps"
    assert line.rstrip().endswith("samples)")


def _descendants_alive(marker: str) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmd:
            found.append(cmd)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_kills_children_and_keeps_partial_result(tmp_path: Path,
                                                            sig: signal.Signals) -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "virtbench", "run", "context1", "pipe", "-c", "2",
         "--no-detect", "--tmpdir", str(work)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # wait until copies run (work dir of the run appears and holds copy dirs)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = list(work.glob("virtbench-*/*"))
        if runs:
            break
        time.sleep(0.2)
    assert runs, "the run never started its copies"
    time.sleep(1.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "partial result saved" in err
    assert "Traceback" not in err
    assert list(work.iterdir()) == []  # temp files removed
    time.sleep(0.2)
    assert _descendants_alive(str(work)) == []  # no copy survives
    saved = sorted(Path(os.environ["XDG_DATA_HOME"], "virtbench", "results").glob("*.json"))
    doc = RunResult.from_dict(json.loads(saved[-1].read_text()))
    assert doc.status == "interrupted"
    assert doc.sections and doc.sections[0].tests[0].test == "context1"


def test_too_little_space_for_file_tests_is_refused(tmp_path: Path) -> None:
    # fsdisk needs ~17 MiB per copy: enough copies to fill the disk, but not more than the
    # machine can run (that is refused earlier, see test_hardening), on the smaller of
    # tmp_path's file system and /dev/shm.
    import shutil
    import tempfile

    from virtbench.runner.limits import max_copies

    limit = max_copies().copies
    for base in (tmp_path, Path("/dev/shm")):
        if not base.is_dir():
            continue
        copies = int(shutil.disk_usage(base).free / (17 * 2**20) * 1.2) + 1
        if copies <= limit:
            break
    else:
        pytest.skip(f"no file system small enough to fill with at most {limit} copies")
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        proc = run_cli("run", "--quick", "fsdisk", "-c", str(copies), "--tmpdir", str(work),
                       "--no-detect")
        assert proc.returncode == 2, proc.stderr
        assert "MiB free; the file tests need" in proc.stderr
        assert list(work.iterdir()) == []
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_profile_is_stamped_and_changes_flags() -> None:
    proc = run_cli("run", "--quick", "syscall", "-c", "1", "--profile", "unixbench-5.1.3",
                   "--json", "--no-detect", check=True)
    run = RunResult.from_dict(json.loads(proc.stdout))
    assert run.profile == "unixbench-5.1.3"
    assert "-O2" in run.environment.cflags and "-O3" not in run.environment.cflags
    assert "-DVB_RAW_GETPID=0" in run.environment.cflags


def test_busy_machine_warning_threshold() -> None:
    from virtbench.runner.invoke import busy_warning

    assert busy_warning([0.2, 0.1, 0.1], 2) is None
    assert busy_warning(None, 2) is None
    msg = busy_warning([3.5, 2.0, 1.0], 2)
    assert msg is not None and "load average 3.50 on 2 CPUs" in msg
