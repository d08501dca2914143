"""virtbench tune -- run ...: the suite compared A/B inside tune's own process (as the
experiments of the registry are), never as a child ``virtbench run``; its options checked
before any setting changes; the settings (a private copy of /proc/sys) restored on a normal
end and on SIGINT/SIGTERM, the suite's work directory removed."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import SRC, run_cli, signal_and_wait, stopped_when
from virtbench import paths
from virtbench.experiments import tune

WORDS = ("run", "--quick", "syscall", "-c", "1", "--no-detect")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A directory tree standing for /proc/sys (``--sysctl-root``): the machine's real
    settings are never touched here."""
    r = tmp_path / "sys"
    (r / "vm").mkdir(parents=True)
    (r / "vm" / "dirty_ratio").write_text("20\n")
    return r


def _ratio(root: Path) -> str:
    return (root / "vm" / "dirty_ratio").read_text().strip()


def _documents() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(paths.results_dir().glob("*.json"))]


def _inner(row: dict[str, Any]) -> dict[str, Any]:
    (path,) = paths.results_dir().glob(f"*-{row['document']}.json")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _check_suite_doc(inner: dict[str, Any], row: dict[str, Any], words: tuple[str, ...],
                     pid: int) -> None:
    """A suite document made in process ``pid`` by ``virtbench <words>``, whose syscall
    score is the row's value."""
    assert inner["type"] == "virtbench.run" and inner["status"] == "complete"
    assert inner["owner"]["pid"] == pid
    assert inner["command"] == ["virtbench", *words]
    assert inner["mode"] == "quick" and inner["comparable"] is False
    (section,) = inner["sections"]
    (test,) = section["tests"]
    assert section["copies"] == 1 and test["test"] == "syscall" and test["status"] == "ok"
    assert len(test["passes"]) == 2
    assert all(c["count"] > 0 for p in test["passes"] for c in p["copies"])
    assert test["score"] > 100  # even a slow, busy box makes 100+ system calls a second
    assert row["value"] == test["score"] and row["status"] == "complete"


def test_suite_ab_runs_in_tunes_process(root: Path, tmp_path: Path) -> None:
    """tune's A/B of a tiny suite selection: every run's document is owned by this very
    process (no child virtbench), its score is the row's value, the settings were B during
    B and are back afterwards, the suite's labels and work root are as `run` makes them."""
    work = tmp_path / "w"
    work.mkdir()
    words = (*WORDS, "--tmpdir", str(work), "--label", "k=v")
    journal = tmp_path / "j.json"
    seen: list[str] = []

    def runner(exp: tune.Experiment) -> tuple[dict[str, Any], float]:
        seen.append(_ratio(root))  # the settings the run measured under
        return tune.run_experiment(exp)

    doc = tune.run(tune.TuneParams(("vm.dirty_ratio=40",), words, rounds=2, root=root,
                                   journal=journal), runner=runner)
    assert doc.status == "complete", doc.notes
    assert seen == ["20", "40", "20", "40"]
    assert [r["variant"] for r in doc.rows] == ["A", "B", "A", "B"]
    assert doc.params["experiment"] == list(words)
    for row in doc.rows:
        inner = _inner(row)
        _check_suite_doc(inner, row, words, os.getpid())
        assert inner["labels"] == {"k": "v"}
    assert doc.summary["metric"] == {"name": "syscall_score", "unit": "lps",
                                     "lower_is_better": False}
    values = [float(r["value"]) for r in doc.rows]
    mean_a = (values[0] + values[2]) / 2
    assert doc.summary["welch"]["mean_a"] == pytest.approx(mean_a)
    assert doc.summary["restored"] is True
    assert _ratio(root) == "20" and not journal.exists()
    assert list(work.iterdir()) == []  # the suite's work root is gone


@pytest.mark.parametrize(("words", "message"), [
    (("run", "nosuchtest"), "unknown test or group 'nosuchtest'"),
    (("run", "-c", "0"), "must be at least 1"),
    (("run", "--quick", "--budget", "1m"), "not allowed with"),
    (("run", "--list"), "--list runs nothing"),
    (("run", "--budget", "5s"), "too small"),
    (("run", "--quick", "--tmpdir", "/nonexistent/dir"), "not a directory"),
])
def test_bad_suite_options_change_nothing(root: Path, tmp_path: Path,
                                          words: tuple[str, ...], message: str) -> None:
    """The suite's options are checked by the suite's own checks before the first setting
    changes (a child `virtbench run` found them only when the first A run started)."""
    from virtbench.errors import UsageError

    journal = tmp_path / "j.json"
    (root / "vm" / "dirty_ratio").write_text("20\n")
    before = (root / "vm" / "dirty_ratio").stat().st_mtime_ns
    with pytest.raises(UsageError, match="not a valid virtbench command: virtbench run") as e:
        tune.run(tune.TuneParams(("vm.dirty_ratio=40",), words, root=root, journal=journal))
    assert message in str(e.value)
    assert (root / "vm" / "dirty_ratio").stat().st_mtime_ns == before
    assert not journal.exists()
    assert [d for d in _documents() if d["type"] == "virtbench.run"] == []


# ---- as a user runs it ------------------------------------------------------------------------
def _virtbench_argv(argv: list[str]) -> bool:
    """Whether a command line is a virtbench process (`python -m virtbench`, `virtbench`)."""
    if argv and Path(argv[0]).name == "virtbench":
        return True
    return any(a == "-m" and b == "virtbench" for a, b in itertools.pairwise(argv))


def _descendants(pid: int) -> list[tuple[int, list[str]]]:
    """(pid, argv) of every process below ``pid`` now."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            parent[int(d.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found: list[tuple[int, list[str]]] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for child, ppid in parent.items():
            if ppid == p:
                todo.append(child)
                try:
                    raw = (Path("/proc") / str(child) / "cmdline").read_bytes()
                except OSError:
                    continue
                found.append((child, [a.decode(errors="replace")
                                      for a in raw.split(b"\0") if a]))
    return found


class _TreeWatch(threading.Thread):
    """Samples the process tree below a pid until stopped: every command line seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.seen: list[list[str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.seen.extend(argv for _, argv in _descendants(self.pid))
            time.sleep(0.02)


def _start(args: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.Popen([sys.executable, "-m", "virtbench", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def test_cli_tune_run_starts_no_child_virtbench(root: Path, tmp_path: Path) -> None:
    """`virtbench tune ... -- run --quick syscall`: the process tree below tune holds the
    suite's gate and workload programs and never a virtbench; the suite's documents are
    owned by tune's own pid; --json prints tune's document alone."""
    work = tmp_path / "w"
    work.mkdir()
    words = (*WORDS, "--tmpdir", str(work))
    run_cli("build", check=True)  # compile outside the watched run (its cc is no virtbench)
    args = ["tune", "--sysctl-root", str(root), "--set", "vm.dirty_ratio=33", "--rounds", "1",
            "--json", "--", *words]
    proc = _start(args)
    watch = _TreeWatch(proc.pid)
    watch.start()
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        watch.stop.set()
        watch.join()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert doc["experiment"] == "tune" and doc["status"] == "complete"
    assert [r["variant"] for r in doc["rows"]] == ["A", "B"]
    for row in doc["rows"]:
        _check_suite_doc(_inner(row), row, words, doc["owner"]["pid"])
    assert doc["owner"]["pid"] == proc.pid
    assert err.count("result saved:") == 3  # A's, B's (as `run` says them) and tune's
    assert _ratio(root) == "20" and list(work.iterdir()) == []
    gates = [argv for argv in watch.seen if argv and Path(argv[0]).name == "vbgate"]
    assert gates, "the watch saw no workload: it could not have seen a child virtbench"
    # tune's own command line below it is tune forked and not yet executing its program
    # (seen in CI under load); a virtbench it started would have a command line of its own
    own = [sys.executable, "-m", "virtbench", *args]
    assert [argv for argv in watch.seen if _virtbench_argv(argv) and argv != own] == []


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_b_restores_and_cleans(root: Path, tmp_path: Path, sig: int) -> None:
    """SIGINT or SIGTERM to tune while a B suite run is measuring: exit 130, the setting
    put back, the suite's work root removed, the suite's document and tune's `interrupted`
    (the suite's saved with what it measured)."""
    work = tmp_path / "w"
    work.mkdir()
    run_cli("build", check=True)
    proc = _start(["tune", "--sysctl-root", str(root), "--set", "vm.dirty_ratio=33",
                   "--rounds", "20", "--", *WORDS, "--tmpdir", str(work)])

    def b_running() -> bool:
        assert proc.poll() is None, proc.communicate()
        return _ratio(root) == "33" and any(work.iterdir())

    # seen with tune stopped: a B run seen running could end before the signal lands (then
    # no suite run is interrupted)
    with stopped_when(proc, b_running, "a B run in progress"):
        proc.send_signal(sig)
    err = signal_and_wait(proc, None)
    assert proc.returncode == 130, err
    assert "interrupted: partial result saved" in err
    assert _ratio(root) == "20"
    assert list(work.iterdir()) == []
    docs = _documents()
    (tune_doc,) = [d for d in docs if d.get("experiment") == "tune"]
    assert tune_doc["status"] == "interrupted" and tune_doc["summary"]["restored"] is True
    runs = {d["id"]: d for d in docs if d["type"] == "virtbench.run"}
    done = {r["document"] for r in tune_doc["rows"]}
    assert all(runs[i]["status"] == "complete" for i in done)
    (last,) = [d for i, d in runs.items() if i not in done]
    assert last["status"] == "interrupted" and last["owner"]["pid"] == proc.pid
    assert not (paths.data_dir() / "running").exists() or \
        list((paths.data_dir() / "running").iterdir()) == []
