"""The sweep on start (virtbench.experiments.sweep): after `kill -9`, the next virtbench
command marks the document abandoned, removes the work directories and restores journaled
sysctls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import SRC, run_cli

from virtbench import paths
from virtbench.experiments import sysctl
from virtbench.experiments.sweep import sweep
from virtbench.results.model import ExperimentResult, Owner
from virtbench.runner.lifecycle import current_owner, lifecycle, owner_alive, running_dir


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _marker(doc_id: str, owner: Owner, started: str = "2026-12-04T10:00:00Z") -> Path:
    m = running_dir() / f"{doc_id}.json"
    m.parent.mkdir(parents=True, exist_ok=True)
    m.write_text(json.dumps({"id": doc_id, "started": started,
                             "owner": owner.model_dump(mode="json")}))
    return m


def _running_in(work: Path) -> list[int]:
    """Live processes whose command line names a path under ``work``."""
    found = []
    for d in Path("/proc").iterdir():
        try:
            cmd = (d / "cmdline").read_bytes() if d.name.isdigit() else b""
        except OSError:
            continue
        if str(work).encode() + b"/" in cmd:
            found.append(int(d.name))
    return found


def test_kill9_then_any_command_cleans_up(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen(
        [sys.executable, "-m", "virtbench", "io", "postmark", "--files", "300",
         "--transactions", "10000000", "--dir", str(work)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    proc.stderr.readline()  # "postmark: ..." (the document is open)
    deadline = time.monotonic() + 60
    while not list(work.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    proc.stderr.close()
    # The postmark program (if it had started) gets SIGTERM as its parent dies
    # (PR_SET_PDEATHSIG); on a busy machine it may need a moment to be scheduled and die, and
    # while it runs it keeps creating files, racing the removal below (seen in CI: the
    # directory survived the sweep). That it dies is checked; the sweep is checked after.
    deadline = time.monotonic() + 30
    while _running_in(work) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _running_in(work) == [], "the postmark program outlived its SIGKILLed parent"
    assert [p.name[:19] for p in work.iterdir()] == ["virtbench-postmark-"]
    after = run_cli("runs", check=True)
    assert "was killed: document" in after.stderr and "marked abandoned" in after.stderr
    assert list(work.iterdir()) == [], (after.stderr, [list(p.iterdir()) for p in work.iterdir()])
    assert list(running_dir().iterdir()) == []
    (doc_path,) = paths.results_dir().glob("*.json")
    doc = json.loads(doc_path.read_text())
    assert doc["status"] == "abandoned" and doc["owner"]["pid"] == proc.pid
    assert "abandoned" in after.stdout
    again = run_cli("runs", check=True)  # said once
    assert "killed" not in again.stderr


def test_live_and_foreign_owners_are_left_alone() -> None:
    mine = _marker("aaaaaaaaaaaa", current_owner())
    other = _marker("bbbbbbbbbbbb", Owner(hostname="elsewhere", pid=_dead_pid()))
    assert owner_alive(current_owner())
    assert sweep(say=lambda m: None) == []
    assert mine.exists() and other.exists()


def test_a_reused_pid_is_not_the_owner() -> None:
    me = current_owner()
    assert me.start_time is not None
    assert not owner_alive(me.model_copy(update={"start_time": me.start_time - 1}))
    assert not owner_alive(me.model_copy(update={"boot_id": "another-boot"}))
    assert not owner_alive(me.model_copy(update={"pid": _dead_pid()}))


def test_only_virtbench_work_directories_are_removed(tmp_path: Path) -> None:
    keep = tmp_path / "precious"
    keep.mkdir()
    gone = tmp_path / "virtbench-postmark-x"
    gone.mkdir()
    (gone / "f").write_text("x")
    link = tmp_path / "virtbench-link"
    link.symlink_to(keep)
    owner = Owner(pid=_dead_pid(), workdirs=[str(keep), str(gone), str(link)])
    m = _marker("cccccccccccc", owner)
    said: list[str] = []
    assert sweep(say=said.append) == []  # no document to mark
    assert keep.is_dir() and link.is_symlink() and not gone.exists() and not m.exists()
    assert said and "had ended" in said[0]


def test_a_finished_document_is_not_marked(tmp_path: Path) -> None:
    from virtbench.store import save_and_record

    doc = ExperimentResult(experiment="toy")
    with lifecycle(doc, save_and_record):
        pass
    assert doc.status == "complete" and not (running_dir() / f"{doc.id}.json").exists()
    _marker(doc.id, Owner(pid=_dead_pid()), doc.started)  # killed between save and unlink
    assert sweep(say=lambda m: None) == []
    from virtbench.results.model import load_any
    from virtbench.store.files import master_path

    assert load_any(master_path(doc)).status == "complete"


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b'{"owner": 5}', b"\xff" * 100,
                                     b'{"owner": {"pid": "x"}}'])
def test_hostile_markers(content: bytes) -> None:
    m = running_dir() / "dddddddddddd.json"
    m.parent.mkdir(parents=True, exist_ok=True)
    m.write_bytes(content)
    assert sweep(say=lambda s: None) == []


def test_a_fifo_marker_does_not_hang() -> None:
    running_dir().mkdir(parents=True, exist_ok=True)
    os.mkfifo(running_dir() / "eeeeeeeeeeee.json")
    started = time.monotonic()
    assert sweep(say=lambda s: None) == []
    assert time.monotonic() - started < 5


def test_a_dead_tunes_journal_is_restored(tmp_path: Path) -> None:
    root = tmp_path / "sys"
    (root / "vm").mkdir(parents=True)
    (root / "vm" / "dirty_ratio").write_text("20\n")
    settings = sysctl.plan(["vm.dirty_ratio=40"], root)
    journal = sysctl.write_journal(settings, root)
    sysctl.apply(settings)
    doc = json.loads(journal.read_text())
    doc["pid"] = _dead_pid()
    journal.write_text(json.dumps(doc))
    said: list[str] = []
    sweep(say=said.append)
    assert (root / "vm" / "dirty_ratio").read_text().strip() == "20"
    assert not journal.exists()
    assert said == [f"a killed tune run (pid {doc['pid']}) left settings changed: restored "
                    "vm.dirty_ratio=20"]


KILLED_VM_SESSION = """
import os, sys
from pathlib import Path
from virtbench.results.model import ExperimentResult
from virtbench.runner.lifecycle import lifecycle
from virtbench.store import save_and_record
from virtbench.vm.qemu import VMSession

s = VMSession(prefix="virtbench-migrate-")  # prepared before the document, as experiments do
with lifecycle(ExperimentResult(experiment="migrate"), save_and_record):
    (s.dir / "initrd").write_bytes(b"x")  # the guests' files: disks, sockets, initramfs
    print(s.dir, flush=True)
    os.kill(os.getpid(), 9)
"""


def test_a_killed_vm_sessions_directory_is_removed_by_the_next_command(tmp_path: Path) -> None:
    """A SIGKILL of `migrate` or `consolidate --kind vm` left the QEMU session's temporary
    directory (bench/kill_points.py: 1 of 1 trial each); it is now registered with the
    running document when it is made, so the next command removes it."""
    env = dict(os.environ, PYTHONPATH=str(SRC), TMPDIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", KILLED_VM_SESSION], env=env, text=True,
                          capture_output=True, check=False, timeout=120)
    assert proc.returncode == -9, proc.stderr
    vmdir = Path(proc.stdout.strip())
    assert vmdir.parent == tmp_path and (vmdir / "initrd").exists()
    after = run_cli("runs", check=True)
    assert "was killed" in after.stderr
    assert not vmdir.exists() and list(tmp_path.iterdir()) == []


def test_a_closed_vm_session_is_no_longer_registered(tmp_path: Path) -> None:
    from virtbench.store import save_and_record
    from virtbench.vm.qemu import VMSession

    doc = ExperimentResult(experiment="migrate")
    with lifecycle(doc, save_and_record):
        with VMSession(prefix="virtbench-migrate-") as s:
            made = s.dir
            assert doc.owner is not None and doc.owner.workdirs == [str(made)]
        assert not made.exists() and doc.owner.workdirs == []


WRITER = """
import os, sys, time
end = time.monotonic() + 0.5
i = 0
while time.monotonic() < end:
    i += 1
    try:
        os.close(os.open(f"{sys.argv[1]}/f{i}", os.O_CREAT | os.O_WRONLY, 0o600))
    except FileNotFoundError:  # the directory is gone: wait for it to come back
        pass
"""


def test_a_work_directory_still_being_written_is_removed(tmp_path: Path) -> None:
    """A dead run's child can still be writing into its work directory for a moment (it
    dies of its parent-death signal once its write returns): one rmtree then meets files
    made after its listing and leaves the directory (seen under load). The sweep tries
    again for about a second."""
    from virtbench.experiments.sweep import _remove_workdir

    work = tmp_path / "virtbench-postmark-x"
    work.mkdir()
    for i in range(5000):  # rmtree's listing takes a while: the writer adds files meanwhile
        (work / f"old{i}").touch()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(work)])
    try:
        deadline = time.monotonic() + 10
        while not (work / "f1").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert (work / "f1").exists(), "the writer did not start"
        assert _remove_workdir(work)
        assert not work.exists()
    finally:
        writer.kill()
        writer.wait()


def test_a_half_written_marker_of_a_dead_process_is_removed() -> None:
    """A run killed while it wrote its marker left ``.<id>.json.<pid>.tmp`` in running/,
    which no sweep looked at (kill points: a SIGINT of run at 2.5 s)."""
    running_dir().mkdir(parents=True, exist_ok=True)
    dead = running_dir() / f".aaaaaaaaaaaa.json.{_dead_pid()}.tmp"
    live = running_dir() / f".bbbbbbbbbbbb.json.{os.getpid()}.tmp"
    dead.write_text("{")
    live.write_text("{")
    sweep(say=lambda m: None)
    assert not dead.exists() and live.exists()
    live.unlink()


def test_ctrl_c_while_the_marker_is_written_leaves_no_temporary_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C is held while the marker is written: it arrives once the marker is renamed
    into place (a Ctrl-C between the write and the rename left the temporary file)."""
    import signal
    import threading

    from virtbench.runner import lifecycle as lc

    real_replace = os.replace

    def ctrl_c_then_replace(src: str | Path, dst: str | Path) -> None:
        # A real Ctrl-C, right before the rename, to this thread: a process-directed one can
        # be taken by a foreign thread that does not block it (OpenBLAS's, once a test module
        # imported scipy), whose handler bypasses this thread's mask; virtbench's own threads
        # block it (childproc.start_thread).
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        time.sleep(0.05)
        real_replace(src, dst)

    monkeypatch.setattr(lc.os, "replace", ctrl_c_then_replace)
    doc = ExperimentResult(experiment="toy")
    doc.owner = current_owner()
    marker = running_dir() / f"{doc.id}.json"
    with pytest.raises(KeyboardInterrupt):
        lc._write_marker(doc, marker)
    assert marker.exists()
    assert [p.name for p in running_dir().iterdir()] == [marker.name]
    marker.unlink()


def test_a_dead_owners_journal_and_workdir_are_swept(tmp_path: Path) -> None:
    """The journal a dead tune's marker owns is replayed even where the sweep would not look
    for it (not the default path), and the in-process experiment's directory it lists is
    removed: after `kill -9` of tune, nothing else knows of either."""
    root = tmp_path / "sys"
    (root / "vm").mkdir(parents=True)
    (root / "vm" / "dirty_ratio").write_text("20\n")
    settings = sysctl.plan(["vm.dirty_ratio=40"], root)
    journal = sysctl.write_journal(settings, root, tmp_path / "elsewhere-journal.json")
    sysctl.apply(settings)
    work = tmp_path / "virtbench-postmark-x"
    (work / "d").mkdir(parents=True)
    dead = _dead_pid()
    marker = _marker("cccccccccccc", Owner(pid=dead, workdirs=[str(work)],
                                           journals=[str(journal)]))
    said: list[str] = []
    sweep(say=said.append)
    assert (root / "vm" / "dirty_ratio").read_text().strip() == "20"
    assert not journal.exists() and not work.exists() and not marker.exists()
    assert said[0] == (f"a killed tune run (pid {os.getpid()}) left settings changed: "
                       "restored vm.dirty_ratio=20")
    assert f"(pid {dead}) was killed" in said[1] and str(work) in said[1]


def test_tune_registers_its_journal_with_its_document(tmp_path: Path) -> None:
    """While tune runs, its marker names its journal (what the sweep replays after kill -9);
    once the settings are back, it no longer does."""
    from virtbench.experiments import tune
    from virtbench.runner.lifecycle import running_dir

    root = tmp_path / "sys"
    (root / "vm").mkdir(parents=True)
    (root / "vm" / "dirty_ratio").write_text("20\n")
    journal = tmp_path / "j.json"
    seen: list[list[str]] = []

    def runner(exp: tune.Experiment) -> tuple[dict[str, object], float]:
        (m,) = running_dir().glob("*.json")
        seen.append(json.loads(m.read_text())["owner"]["journals"])
        return {"type": "virtbench.experiment", "id": "x", "status": "complete",
                "summary": {"main_metric": {"name": "v", "value": 1.0 + len(seen)}}}, 0.0

    params = tune.TuneParams(("vm.dirty_ratio=40",), ("io", "postmark"), rounds=1, root=root,
                             journal=journal)
    doc = tune.run(params, runner=runner)
    assert seen == [[str(journal)], [str(journal)]]
    assert doc.owner is not None and doc.owner.journals == []
    assert not journal.exists() and list(running_dir().glob("*.json")) == []


KILLED_WRITER = r"""
import os, sys, time
from pathlib import Path
from virtbench import safeio
def stuck(fd):  # the write is between its create and its rename when the kill comes
    print("writing", flush=True)
    time.sleep(60)
safeio.os.fsync = stuck
safeio.atomic_write(Path(sys.argv[1]), "{}")
"""


def test_a_killed_writers_temporary_file_is_removed_by_the_next_command() -> None:
    """A SIGKILL between the create and the rename of a document's write left
    ``.<id>.json.<pid>-<random>.tmp`` in the results directory; the next command removes it,
    and leaves a live writer's and any other dot file alone."""
    results = paths.results_dir()
    results.mkdir(parents=True, exist_ok=True)
    target = results / "aaaaaaaaaaaa.json"
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)],
                             env=dict(os.environ, PYTHONPATH=str(SRC)),
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    with child.stdout:
        assert child.stdout.readline() == "writing\n"
        child.kill()
        child.wait()
    left = [p for p in results.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and f".{child.pid}-" in left[0].name, left
    live = results / f".bbbbbbbbbbbb.json.{os.getpid()}-abcd_123.tmp"
    other = results / ".notes.tmp"
    live.write_text("{")
    other.write_text("mine")
    run_cli("runs", check=True)
    assert sorted(p.name for p in results.iterdir()) == sorted([live.name, other.name])
    live.unlink()
    other.unlink()


def test_a_work_directory_the_work_left_is_removed_when_its_document_ends(
        tmp_path: Path) -> None:
    """A cleanup that was cut short or missed (CI once saw `io postmark`'s directory left
    after a Ctrl-C) is caught by the document's end: what it still owns is removed, the
    marker with it."""
    from virtbench.runner.lifecycle import new_workdir
    from virtbench.store import save_and_record

    doc = ExperimentResult(experiment="toy")
    with pytest.raises(KeyboardInterrupt), lifecycle(doc, save_and_record):
        work = new_workdir("virtbench-toy-", tmp_path)
        (work / "sub").mkdir()
        (work / "sub" / "file").write_text("x")
        raise KeyboardInterrupt
    assert doc.status == "interrupted"
    assert list(tmp_path.iterdir()) == []
    assert doc.owner is not None and doc.owner.workdirs == []
    assert not (running_dir() / f"{doc.id}.json").exists()


def test_an_inner_document_leaves_what_the_outer_one_still_owns(tmp_path: Path) -> None:
    # tune's experiment: a directory made while both documents run belongs to both; the
    # inner one ending must not remove it under the outer one's feet
    from virtbench.runner.lifecycle import new_workdir, remove_workdir
    from virtbench.store import save_and_record

    outer, inner = ExperimentResult(experiment="tune"), ExperimentResult(experiment="toy")
    with lifecycle(outer, save_and_record):
        with lifecycle(inner, save_and_record):
            shared = new_workdir("virtbench-toy-", tmp_path)
        assert shared.is_dir()
        assert outer.owner is not None and outer.owner.workdirs == [str(shared)]
        assert remove_workdir(shared) and outer.owner.workdirs == []
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_cannot_be_removed_stays_registered(tmp_path: Path) -> None:
    """Forgotten only once gone: an immutable file keeps its directory, which then stays
    in the marker for the sweep (untracking it anyway lost it for good)."""
    from virtbench.runner.lifecycle import new_workdir, remove_workdir
    from virtbench.store import save_and_record

    doc = ExperimentResult(experiment="toy")
    with lifecycle(doc, save_and_record):
        work = new_workdir("virtbench-toy-", tmp_path)
        stuck = work / "stuck"
        stuck.touch()
        if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode:
            pytest.skip("chattr +i is not supported here")
        try:
            assert not remove_workdir(work)
            assert work.is_dir()
            assert doc.owner is not None and doc.owner.workdirs == [str(work)]
            marker = json.loads((running_dir() / f"{doc.id}.json").read_text())
            assert marker["owner"]["workdirs"] == [str(work)]
        finally:
            subprocess.run(["chattr", "-i", str(stuck)], check=True)
    assert list(tmp_path.iterdir()) == []  # removed at the document's end
