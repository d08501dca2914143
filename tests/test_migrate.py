"""``virtbench migrate``: a real TCG live migration, and one that cannot converge."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from virtbench.cli import main
from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.vm import initramfs, kernel
from virtbench.vm import migration as mig
from virtbench.vm.qemu import session


def test_parse_rate() -> None:
    assert mig.parse_rate("10M") == 10 * mig.MiB
    assert mig.parse_rate("512K") == 512 * 1024
    assert mig.parse_rate("1.5G") == int(1.5 * 1024 * mig.MiB)
    assert mig.parse_rate("200MB/s") == 200 * mig.MiB
    assert mig.parse_rate("unlimited") == mig.UNLIMITED
    assert mig.fmt_rate(10 * mig.MiB) == "10M"
    for bad in ("fast", "-1M", "0"):
        with pytest.raises(UsageError):
            mig.parse_rate(bad)


def test_cli_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--bandwidth", "fast"]) == 2
    assert "not a rate" in capsys.readouterr().err
    assert main(["migrate", "--memory", "0"]) == 2
    assert main(["migrate", "--dirty-rate", "x"]) == 2
    assert main(["migrate", "--kernel", "/nonexistent/vmlinuz"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["migrate", "--wss", "100", "--memory", "128"]) == 2
    assert "at most 48" in capsys.readouterr().err


def test_a_dynamic_busybox_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRTBENCH_BUSYBOX", sys.executable)  # a dynamically linked program
    with pytest.raises(EnvironmentUnsupported, match="statically linked"):
        initramfs.find_busybox()


def _vm_ready() -> str | None:
    try:
        kernel.find_kernel()
        initramfs.find_busybox()
    except Exception as exc:
        return str(exc)
    return None if shutil.which("qemu-system-x86_64") else "no qemu-system-x86_64"


@pytest.mark.slow
@pytest.mark.skipif(_vm_ready() is not None, reason=f"VM layer not available: {_vm_ready()}")
def test_real_tcg_migration_then_non_converging(tmp_path: Path) -> None:
    # block mode: the guest's local disk is mirrored to the destination over NBD first
    opts = mig.MigrateOptions(memory_mb=128, wss_mb=16, settle=1.0, timeout=8.0,
                              storage="block", disk_mb=8)
    logs: list[str] = []
    with session() as s:
        m = mig.Migrator(s, kernel.find_kernel(), "tcg", opts, log=logs.append)
        m.boot()
        ok = m.run_point(mig.Point(bandwidth=100 * mig.MiB, dirty_rate_mb=2))
        first_qemu = next(g for g in s.guests if g.name == "gen0")
        if ok.row["guest_crashed"]:  # QEMU 7.2 TCG sometimes delivers a broken guest
            assert "did not resume" in ok.row["reason"] and not ok.row["counter_continues"]
            m.boot()
        # a bandwidth far below the dirty rate: every pass re-sends the whole working set
        stuck = m.run_point(mig.Point(bandwidth=16 * mig.MiB, dirty_rate_mb=64))
        workdir = s.dir
        survivor = m.current
        assert survivor is not None and survivor.alive()
    assert not workdir.exists()
    assert survivor.proc is not None and survivor.proc.poll() is not None

    n = stuck.row
    assert not n["converged"] and n["status"] != "completed"
    assert "not converged" in n["reason"]
    assert n["non_convergence"] == "dirty rate >= bandwidth", n["reason"]
    assert n["remaining_mb"] and n["remaining_mb"] > 1
    assert n["counter_continues"] and n["same_boot"]  # still running on the source
    assert n["dirty_mb_s_guest"] > 16

    r = ok.row
    if r["guest_crashed"]:
        pytest.xfail(f"destination guest crashed after the switch-over: {r['reason']}")
    assert r["converged"] and r["status"] == "completed"
    assert r["counter_continues"] and r["same_boot"], r
    assert r["source_gone"] and first_qemu.proc is not None and first_qemu.proc.poll() is not None
    assert r["downtime_ms"] is not None and r["downtime_ms"] >= 0
    assert r["guest_downtime_ms"] is not None and r["guest_downtime_ms"] < 10_000
    assert r["iterations"] >= 2 and r["transferred_mb"] > opts.wss_mb
    assert r["first_seq_after"] > 0  # not restarted from 0
    assert ok.iterations and ok.iterations[0]["iteration"] == 1
    assert r["throughput_before"] and r["throughput_after"]
    assert r["storage"] == "block" and r["mirror_s"] is not None and r["mirror_s"] > 0


def _children_qemu(tmp: Path) -> list[int]:
    """QEMU processes whose command line mentions ``tmp`` (ours, not other tests')."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmd and str(tmp) in cmd:
            found.append(int(d.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(_vm_ready() is not None, reason=f"VM layer not available: {_vm_ready()}")
@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_interrupted_migration_leaves_nothing(tmp_path: Path, sig: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent / "src"),
               TMPDIR=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "virtbench", "migrate", "--bandwidth", "2M", "--dirty-rate",
         "4", "--wss", "16", "--settle", "0.5", "--timeout", "60", "--accel", "tcg"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        seen = []
        for line in proc.stderr:  # wait until the migration is under way
            seen.append(line)
            if "migrating at" in line:
                break
        time.sleep(1.0)
        assert len(_children_qemu(tmp_path)) == 2, seen  # source and destination
        proc.send_signal(sig)
        rest = proc.communicate(timeout=60)[1]
    finally:  # a failure above must not leave the process (and its pipes) to a later test
        if proc.returncode is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, rest
    assert "interrupted" in rest
    assert _children_qemu(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("virtbench-")] == []


def test_crash_detection_reads_the_console(tmp_path: Path) -> None:
    from virtbench.vm.qemu import Guest, GuestConfig

    g = Guest(GuestConfig(Path("k"), Path("i")), tmp_path, name="d")
    assert mig._crash_line(g) is None  # no console yet
    g.console_path.write_text("[    0.04] ..MP-BIOS bug: 8254 timer not connected\n"
                              "[   25.7] BUG: unable to handle page fault for address: ffff\n"
                              "[   25.8] Kernel panic - not syncing: Fatal exception\n")
    assert mig._crash_line(g) == "BUG: unable to handle page fault for address: ffff"
    assert mig._crashed(g)  # and QEMU is not even running


def test_migrate_says_where_it_saved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from virtbench.cli._experiment import say_where
    from virtbench.results.model import ExperimentResult
    from virtbench.store import master_path

    doc = ExperimentResult(experiment="migrate", status="complete")
    out = tmp_path / "m.json"
    say_where(doc, argparse.Namespace(no_save=False, output=out))
    assert capsys.readouterr().err == f"virtbench: result saved: {master_path(doc)} and {out}\n"
    say_where(doc, argparse.Namespace(no_save=True, output=None))
    assert capsys.readouterr().err == ""
