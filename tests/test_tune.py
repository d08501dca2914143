"""virtbench tune: sysctls checked before anything changes, A B interleaving, Welch's test,
and the originals restored after a normal run, an error, SIGINT/SIGTERM and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scipy import stats
from tests.conftest import SRC, run_cli, signal_and_wait, stopped_when, wait_for

from virtbench.analysis.welch import welch
from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.experiments import sysctl, tune

PROC = Path("/proc/sys")


def _proc_writable() -> bool:
    p = PROC / "vm" / "dirty_ratio"
    if os.geteuid() != 0 or not p.is_file():
        return False
    try:
        value = p.read_text()
        p.write_text(value)
    except OSError:
        return False
    return True


_REAL_SKIP = pytest.mark.skipif(not _proc_writable(),
                                reason="needs root and a writable /proc/sys (privileged host)")


def REAL(fn: Any) -> Any:
    return pytest.mark.slow(_REAL_SKIP(fn))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A directory tree standing for /proc/sys."""
    r = tmp_path / "sys"
    (r / "vm").mkdir(parents=True)
    (r / "vm" / "dirty_ratio").write_text("20\n")
    (r / "vm" / "dirty_background_ratio").write_text("10\n")
    (r / "kernel").mkdir()
    (r / "kernel" / "sched_child_runs_first").write_text("0\n")
    (r / "kernel" / "osrelease").write_text("6.1.0-test\n")
    (r / "kernel" / "osrelease").chmod(0o444)
    (r / "kernel" / "printk").write_text("4\t4\t1\t7\n")
    return r


def _values(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*"))
            if p.is_file()}


# ---- checks before any change ------------------------------------------------------------
@pytest.mark.parametrize(("assignment", "message"), [
    ("vm.nope=1", "unknown sysctl vm.nope"),
    ("vm=1", "not a sysctl name"),
    ("kernel=1", "not a sysctl name"),
    ("kernel.osrelease=7", "cannot change kernel.osrelease: it is read-only"),
    ("vm.dirty_ratio=abc", "takes integers"),
    ("vm.dirty_ratio=", "empty value"),
    ("vm.dirty_ratio", "KEY=VALUE"),
    ("vm/../kernel/printk=1", "not a sysctl name"),
])
def test_bad_settings_change_nothing(root: Path, assignment: str, message: str) -> None:
    before = _values(root)
    with pytest.raises(UsageError, match=message):
        sysctl.plan(["kernel.sched_child_runs_first=1", assignment], root)
    assert _values(root) == before


def test_group_and_duplicates(root: Path) -> None:
    (root / "net" / "core").mkdir(parents=True)
    (root / "net" / "core" / "x").write_text("1\n")
    with pytest.raises(UsageError, match="group of settings"):
        sysctl.plan(["net.core=1"], root)
    with pytest.raises(UsageError, match="twice"):
        sysctl.plan(["vm.dirty_ratio=1", "vm/dirty_ratio=2"], root)


def test_not_root_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EnvironmentUnsupported, match="needs root"):
        sysctl.plan(["vm.dirty_ratio=30"], PROC)


def test_plan_records_values(root: Path) -> None:
    settings = sysctl.plan(["vm.dirty_ratio=40", "kernel.printk=3 4 1 7"], root)
    assert [(s.key, s.original, s.new) for s in settings] == [
        ("vm.dirty_ratio", "20", "40"), ("kernel.printk", "4 4 1 7", "3 4 1 7")]


# ---- journal -----------------------------------------------------------------------------
def test_journal_replay_after_crash(root: Path, tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    before = _values(root)
    settings = sysctl.plan(["vm.dirty_ratio=40", "kernel.printk=3 4 1 7"], root)
    sysctl.write_journal(settings, root, journal)
    sysctl.apply(settings)
    assert (root / "vm" / "dirty_ratio").read_text().strip() == "40"
    # a second tune run refuses while the journal is there
    with pytest.raises(UsageError, match="tune --restore"):
        sysctl.write_journal(settings, root, journal)
    doc = json.loads(journal.read_text())
    assert doc["root"] == str(root) and doc["settings"][0]["original"] == "20"
    # "the process died": replay
    doc2, outcomes = sysctl.restore_journal(journal)
    assert doc2 is not None and all(o.ok for o in outcomes)
    assert {o.key: o.before for o in outcomes}["vm.dirty_ratio"] == "40"
    assert not journal.exists()
    assert {k: " ".join(v.split()) for k, v in _values(root).items()} == \
        {k: " ".join(v.split()) for k, v in before.items()}
    assert sysctl.restore_journal(journal) == (None, [])


def test_restore_keeps_journal_when_a_value_cannot_be_written(root: Path,
                                                                tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    settings = sysctl.plan(["vm.dirty_ratio=40"], root)
    sysctl.write_journal(settings, root, journal)
    sysctl.apply(settings)
    (root / "vm" / "dirty_ratio").unlink()
    (root / "vm" / "dirty_ratio").mkdir()  # now unwritable as a file
    _, outcomes = sysctl.restore_journal(journal)
    assert not outcomes[0].ok and outcomes[0].error
    assert journal.exists()


# ---- the A/B run with an injected experiment runner ----------------------------------------
def _fake_runner(root: Path, seen: list[str], fail_on: int | None = None,
                 journal: Path | None = None) -> Any:
    def runner(argv: list[str]) -> tuple[dict[str, Any], float]:
        if journal is not None:  # the originals are on disk while anything is changed
            doc = json.loads(journal.read_text())
            assert {s["key"]: s["original"] for s in doc["settings"]} == {
                "vm.dirty_ratio": "20"}
        value = int((root / "vm" / "dirty_ratio").read_text())
        seen.append(str(value))
        if fail_on is not None and len(seen) == fail_on:
            raise KeyboardInterrupt
        metric = 100.0 + value + 0.1 * len(seen)
        return {"type": "virtbench.experiment", "id": f"c{len(seen)}", "status": "complete",
                "summary": {"main_metric": {"name": "speed", "value": metric, "unit": "op/s",
                                            "lower_is_better": False}}}, 0.01
    return runner


def test_ab_interleaved_and_restored(root: Path, tmp_path: Path) -> None:
    seen: list[str] = []
    journal = tmp_path / "j.json"
    params = tune.TuneParams(("vm.dirty_ratio=40",), ("io", "postmark"), rounds=3, root=root,
                             journal=journal)
    doc = tune.run(params, runner=_fake_runner(root, seen, journal=journal))
    assert seen == ["20", "40"] * 3
    assert [r["variant"] for r in doc.rows] == ["A", "B"] * 3
    assert (root / "vm" / "dirty_ratio").read_text().strip() == "20"
    assert not journal.exists()
    s = doc.summary
    assert s["restored"] is True and s["significant"] is True
    assert s["welch"]["difference"] == pytest.approx(20.1, abs=1e-9)
    assert s["verdict"].startswith("B (new settings) is better")
    assert s["main_metric"]["name"] == "difference_pct"
    assert doc.status == "complete"
    saved = list(Path(os.environ["XDG_DATA_HOME"], "virtbench", "results").glob("*.json"))
    assert any(json.loads(p.read_text())["id"] == doc.id for p in saved)


def test_interrupt_during_b_restores(root: Path, tmp_path: Path) -> None:
    seen: list[str] = []
    journal = tmp_path / "j.json"
    params = tune.TuneParams(("vm.dirty_ratio=40",), ("io", "postmark"), rounds=3, root=root,
                             journal=journal)
    with pytest.raises(KeyboardInterrupt):
        tune.run(params, runner=_fake_runner(root, seen, fail_on=4))
    assert seen == ["20", "40", "20", "40"]
    assert (root / "vm" / "dirty_ratio").read_text().strip() == "20"
    assert not journal.exists()
    saved = [json.loads(p.read_text()) for p in
             Path(os.environ["XDG_DATA_HOME"], "virtbench", "results").glob("*.json")]
    assert [d["status"] for d in saved if d["experiment"] == "tune"] == ["interrupted"]


def test_bad_experiment_command_changes_nothing(root: Path, tmp_path: Path) -> None:
    journal = tmp_path / "j.json"
    for command, message in [((), "no experiment"), (("tune",), "cannot run tune"),
                              (("io", "nosuch"), "not a valid virtbench command")]:
        params = tune.TuneParams(("vm.dirty_ratio=40",), command, root=root, journal=journal)
        with pytest.raises(UsageError, match=message):
            tune.run(params, runner=_fake_runner(root, []))
        assert not journal.exists()
    assert (root / "vm" / "dirty_ratio").read_text().strip() == "20"


def test_experiment_runs_in_tunes_process_through_the_registry(root: Path,
                                                               tmp_path: Path) -> None:
    """The experiment runs inside tune's process (its documents' owner is this process),
    with the params its spec made of the words after --, its common options applied
    (--label), and its work directory gone afterwards; bad options are refused before any
    setting changes."""
    from virtbench import paths

    work = tmp_path / "w"
    work.mkdir()
    words = ("io", "postmark", "--files", "20", "--transactions", "50", "--dir", str(work),
             "--label", "k=v")
    journal = tmp_path / "j.json"
    doc = tune.run(tune.TuneParams(("vm.dirty_ratio=40",), words, rounds=1, root=root,
                                   journal=journal))
    assert doc.status == "complete" and [r["variant"] for r in doc.rows] == ["A", "B"]
    assert doc.params["experiment"] == list(words)
    for row in doc.rows:
        (path,) = paths.results_dir().glob(f"*-{row['document']}.json")
        inner = json.loads(path.read_text())
        assert inner["experiment"] == "postmark" and inner["status"] == "complete"
        assert inner["owner"]["pid"] == os.getpid()
        assert inner["command"] == ["virtbench", *words]
        assert inner["labels"] == {"k": "v", "condition": "solo"}
        assert inner["params"]["files"] == 20 and inner["params"]["transactions"] == 50
        assert row["value"] == inner["summary"]["main_metric"]["value"]
    assert list(work.iterdir()) == [] and not journal.exists()
    assert (root / "vm" / "dirty_ratio").read_text().strip() == "20"
    with pytest.raises(UsageError, match=r"not a valid virtbench command: .*--repeat must be"):
        tune.run(tune.TuneParams(("vm.dirty_ratio=40",), ("io", "postmark", "--repeat", "0"),
                                 root=root, journal=journal))
    assert not journal.exists()


def test_programs_run_with_signals_unblocked() -> None:
    """Signals are held while an experiment's program is forked (a Ctrl-C then was lost in
    Python's at-fork hooks); the program itself must not inherit that mask, or the
    parent-death SIGTERM and a Ctrl-C never reach it."""
    from virtbench.experiments.common import run_program

    proc = run_program(["grep", "^SigBlk", "/proc/self/status"])
    blocked = int(proc.stdout.split()[1], 16)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        assert not blocked & (1 << (sig - 1)), proc.stdout


def test_welch_matches_scipy() -> None:
    a, b = [10.0, 11.0, 12.5, 10.2], [12.0, 13.1, 12.4, 14.0, 13.3]
    w = welch(a, b)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert w.t == pytest.approx(float(ref.statistic))
    assert w.p_value == pytest.approx(float(ref.pvalue))
    assert w.ci_low is not None and w.ci_high is not None
    assert w.ci_low < w.difference < w.ci_high
    same = welch([5.0, 5.0], [5.0, 5.0])
    assert same.p_value == 1.0 and not same.significant()
    one = welch([5.0], [6.0])
    assert one.p_value is None and one.difference == 1.0


# ---- the real thing: /proc/sys ----------------------------------------------------------------
RATIO = PROC / "vm" / "dirty_ratio"
BG = PROC / "vm" / "dirty_background_ratio"
DIRTY_BYTES = PROC / "vm" / "dirty_bytes"


def _read(p: Path) -> str:
    return p.read_text().strip()


@pytest.fixture
def guard(machine_sysctls: None) -> Any:
    """Whatever a failing test leaves behind, put the machine's settings back. Holds the
    machine-wide lock (conftest.machine_sysctls) first, so the values saved here are not
    another pytest session's temporary ones."""
    keys = ("dirty_ratio", "dirty_bytes", "dirty_background_ratio", "dirty_background_bytes")
    saved = {k: _read(PROC / "vm" / k) for k in keys}
    yield saved
    for k in keys:  # write the non-zero member of each coupled pair
        if saved[k] != "0" and _read(PROC / "vm" / k) != saved[k]:
            (PROC / "vm" / k).write_text(saved[k] + "\n")
    sysctl.journal_path().unlink(missing_ok=True)


def _new_ratio() -> str:
    return str(int(_read(RATIO)) % 60 + 7)


@REAL
def test_real_run_restores(tmp_path: Path, guard: Any) -> None:
    orig = (_read(RATIO), _read(BG), _read(DIRTY_BYTES))
    new = _new_ratio()
    proc = run_cli("tune", "--set", f"vm.dirty_ratio={new}", "--set",
                   "vm.dirty_background_ratio=5", "--rounds", "1", "--json", "--", "io",
                   "postmark", "--files", "30", "--transactions", "100", "--dir",
                   str(tmp_path), check=True)
    doc = json.loads(proc.stdout)
    assert (_read(RATIO), _read(BG), _read(DIRTY_BYTES)) == orig
    assert doc["experiment"] == "tune" and doc["summary"]["restored"] is True
    assert doc["params"]["settings"][0] == {"key": "vm.dirty_ratio", "a": orig[0], "b": new}
    assert [r["variant"] for r in doc["rows"]] == ["A", "B"]
    assert doc["summary"]["metric"]["name"] == "transactions_per_second"
    assert "too few rounds" in doc["summary"]["verdict"]
    assert not sysctl.journal_path().exists()


@REAL
def test_real_errors_change_nothing(guard: Any) -> None:
    orig = _read(RATIO)
    with pytest.raises(UsageError, match="read-only"):
        sysctl.plan(["kernel.osrelease=1"])
    with pytest.raises(UsageError, match="unknown sysctl"):
        sysctl.plan(["vm.dirty_ratio=30", "vm.no_such_setting=1"])
    cases = [
        (["--set", "vm.dirty_ratio=abc"], "takes integers"),
        (["--set", "vm.dirty_ratio=1000"], "the kernel refused vm.dirty_ratio=1000"),
    ]
    for args, message in cases:
        proc = run_cli("tune", *args, "--", "io", "postmark", "--files", "10")
        assert proc.returncode != 0, args
        assert message in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert _read(RATIO) == orig
        assert not sysctl.journal_path().exists()


def _start_tune(tmp_path: Path, new: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.Popen(
        [sys.executable, "-m", "virtbench", "tune", "--set", f"vm.dirty_ratio={new}",
         "--rounds", "50", "--", "io", "postmark", "--files", "200", "--transactions",
         "3000", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)


@REAL
def test_real_kill9_then_restore(tmp_path: Path, guard: Any) -> None:
    orig, new = _read(RATIO), _new_ratio()
    proc = _start_tune(tmp_path, new)
    try:
        # a B run in progress (its postmark directory exists), seen with tune stopped: a
        # B run seen running could end before the kill lands
        with stopped_when(proc, lambda: _read(RATIO) == new and any(tmp_path.iterdir()),
                          "a B run in progress"):
            proc.kill()
            proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert _read(RATIO) == new, "tune was killed while B was applied"
    assert sysctl.journal_path().exists()
    # the next virtbench command, whatever it is, restores (virtbench.experiments.sweep) and says so
    fixed = run_cli("runs", check=True)
    assert f"restored vm.dirty_ratio={orig}" in fixed.stderr, fixed.stderr
    assert _read(RATIO) == orig
    assert not sysctl.journal_path().exists()
    # the orphaned experiment died with its parent and cleaned up
    wait_for(lambda: not any(tmp_path.iterdir()),
              lambda: f"the experiment's cleanup (left: {list(tmp_path.rglob('*'))[:5]})",
              timeout=120)
    nothing = run_cli("tune", "--restore", check=True)
    assert "nothing to restore" in nothing.stdout


@REAL
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_real_signal_restores(tmp_path: Path, sig: int, guard: Any) -> None:
    orig, new = _read(RATIO), _new_ratio()
    proc = _start_tune(tmp_path, new)
    with stopped_when(proc, lambda: _read(RATIO) == new and any(tmp_path.iterdir()),
                      "a B run in progress"):
        proc.send_signal(sig)  # acted on from the B run seen, once tune continues
    err = signal_and_wait(proc, None)
    assert proc.returncode == 130, err
    assert _read(RATIO) == orig
    assert not sysctl.journal_path().exists()
    wait_for(lambda: not any(tmp_path.iterdir()),
              lambda: f"the experiment's cleanup (left: {list(tmp_path.rglob('*'))[:5]})",
              timeout=120)


def test_read_only_mount_is_detected(root: Path, tmp_path: Path) -> None:
    """/proc/sys mounted read-only (unprivileged containers): a clear error, nothing done.
    Emulated with a read-only bind mount of the fixture tree (needs root)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(root), str(ro)],
                             capture_output=True, check=False).returncode == 0
    if not mounted:
        pytest.skip("cannot bind-mount here (needs root with mount rights)")
    try:
        with pytest.raises(UsageError, match="mounted read-only"):
            sysctl.plan(["vm.dirty_ratio=40"], ro)
    finally:
        subprocess.run(["umount", str(ro)], check=False)
