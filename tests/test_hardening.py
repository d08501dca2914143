"""Hostile input and hostile neighbours (issue 12, docs/reliability.md): no traceback, no
escape from the results directory, no half-written file, nothing lost under concurrency."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from clihelp import vb
from conftest import ROOT, SRC, run_cli
from virtbench import paths
from virtbench.errors import UsageError
from virtbench.safeio import MAX_QUOTE, atomic_write, clip_message, parse_json, read_regular
from virtbench.store import dispose_engines

DATA = Path(__file__).resolve().parent / "data"
PV = DATA / "unixbench-centos6-xen-pv.txt"


@pytest.fixture(autouse=True)
def _fresh_engines() -> None:
    dispose_engines()


def _one_line_error(rc: int, err: str, expected_rc: int = 2) -> str:
    assert rc == expected_rc, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("virtbench"), err
    assert "Traceback" not in err
    return lines[0]


def _pv_doc() -> dict[str, Any]:
    rc, out, err = vb("import", "--dry-run", "--json", str(PV))
    assert rc == 0, err
    doc: dict[str, Any] = json.loads(out)[0]
    return doc


def _tmp_leftovers(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".tmp")]


# ---- security ------------------------------------------------------------------------------


def test_an_imported_id_never_names_another_directory(tmp_path: Path) -> None:
    outside = tmp_path / "pwned"
    doc = _pv_doc()
    doc["id"] = f"x/../../../../../../../../..{outside}"
    bad = tmp_path / "evil.json"
    bad.write_text(json.dumps(doc))
    rc, _, err = vb("import", str(bad))
    assert "id" in _one_line_error(rc, err)
    assert not list(tmp_path.glob("pwned*"))
    assert not paths.results_dir().exists() or not list(paths.results_dir().iterdir())


def test_master_path_checks_an_id_changed_after_validation() -> None:
    from virtbench.results.model import RunResult
    from virtbench.store import master_path

    doc = RunResult(profile="imported")
    doc.id = "../escape"  # no validation on assignment
    with pytest.raises(UsageError, match="invalid document id"):
        master_path(doc)


def test_a_fleet_run_id_never_names_another_directory() -> None:
    from virtbench.fleet.state import FleetState

    with pytest.raises(UsageError, match="invalid fleet run id"):
        FleetState.load("../../etc")


def _plant_symlinks(directory: Path, name: str, victim: Path) -> list[Path]:
    """Symlinks at every temporary name the old code used (``.<name>.<pid>.tmp``) for pids
    near ours, pointing at ``victim``."""
    planted = []
    for pid in range(max(1, os.getpid() - 5), os.getpid() + 50):
        link = directory / f".{name}.{pid}.tmp"
        link.symlink_to(victim)
        planted.append(link)
    return planted


def test_output_never_follows_a_symlink_planted_at_a_temp_name(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    outdir = tmp_path / "out"
    outdir.mkdir()
    planted = _plant_symlinks(outdir, "export.json", victim)
    rc, _, err = vb("export", str(PV), "--format", "json", "-o", str(outdir / "export.json"))
    assert rc == 0, err
    assert victim.read_text() == "precious\n"
    assert json.loads((outdir / "export.json").read_text())
    assert all(p.is_symlink() for p in planted)


def test_saving_a_document_never_follows_a_symlink_planted_at_a_temp_name(
        tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    doc = _pv_doc()
    results = paths.results_dir()
    results.mkdir(parents=True)
    name = f"{doc['started'][:10]}-{doc['id']}.json"
    _plant_symlinks(results, name, victim)
    rc, _, err = vb("import", str(PV))
    assert rc == 0, err
    assert victim.read_text() == "precious\n"
    assert json.loads((results / name).read_text())["id"] == doc["id"]


def test_atomic_write_replaces_a_symlink_at_the_target_instead_of_following_it(
        tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = tmp_path / "doc.json"
    target.symlink_to(victim)
    atomic_write(target, "{}\n")
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and target.read_text() == "{}\n"


def _in_tiny_tmpfs(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (sh) in a private mount namespace with a 256 KiB tmpfs at $T."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    env = dict(os.environ, T=str(mnt), PY=sys.executable,
               PYTHONPATH=str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f'mount -t tmpfs -o size=256k tmpfs "$T" || exit 99\n{script}'],
        capture_output=True, text=True, timeout=120, env=env, check=False)
    if proc.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    return proc


def test_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path: Path) -> None:
    vb("import", str(PV))
    proc = _in_tiny_tmpfs(
        'echo previous > "$T/out.json"\n'
        'head -c 250000 /dev/zero > "$T/filler" 2>/dev/null\n'
        '"$PY" -m virtbench export latest --format json -o "$T/out.json"; echo "rc=$?"\n'
        'cat "$T/out.json"; ls -a "$T"\n', tmp_path)
    out, err = proc.stdout, proc.stderr
    assert "rc=2" in out, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "out.json: cannot write: No space left on device" in err
    assert "previous" in out  # the old content, intact
    assert ".tmp" not in out  # no temporary file left behind (ls -a)


def test_full_disk_while_saving_a_document_leaves_no_temp_file(tmp_path: Path) -> None:
    proc = _in_tiny_tmpfs(
        'head -c 255000 /dev/zero > "$T/filler" 2>/dev/null\n'
        f'XDG_DATA_HOME="$T" "$PY" -m virtbench import --db "sqlite:///{tmp_path}/i.db" '
        f'"{PV}"; echo "rc=$?"\n'
        'find "$T" -name "*.tmp" -o -size 0 -name "*.json"\n', tmp_path)
    assert "rc=2" in proc.stdout, (proc.stdout, proc.stderr)
    assert "No space left on device" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert ".tmp" not in proc.stdout and ".json" not in proc.stdout.split("rc=2")[1]


def test_read_only_disk_is_one_line(tmp_path: Path) -> None:
    proc = _in_tiny_tmpfs(
        'echo previous > "$T/out.json"; mount -o remount,ro "$T"\n'
        f'"$PY" -m virtbench export "{PV}" --format csv -o "$T/out.json"; echo "rc=$?"\n'
        'cat "$T/out.json"\n', tmp_path)
    assert "rc=2" in proc.stdout and "previous" in proc.stdout, (proc.stdout, proc.stderr)
    assert "cannot write: Read-only file system" in _one_line_error(2, proc.stderr)


# ---- hostile documents ---------------------------------------------------------------------


def _mutated(tmp_path: Path, name: str, change: Any) -> Path:
    doc = _pv_doc()
    change(doc)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def _test0(doc: dict[str, Any]) -> dict[str, Any]:
    t: dict[str, Any] = doc["sections"][0]["tests"][0]
    return t


@pytest.mark.parametrize(("name", "change", "expect"), [
    ("samples-over-int64", lambda d: _test0(d).update(samples=2**70), "out of range"),
    ("samples-too-big", lambda d: _test0(d).update(samples=2**62), "samples"),
    ("negative-baseline", lambda d: _test0(d).update(baseline=-116700.0), "baseline"),
    ("denormal-baseline", lambda d: _test0(d).update(baseline=1e-320), "baseline"),
    ("negative-score", lambda d: _test0(d).update(score=-1.0), "score"),
    ("huge-float", lambda d: _test0(d).update(score=1e300), "score"),
    ("huge-cpus", lambda d: d["environment"].update(cpu_count=10**6 + 10**7), "cpu_count"),
    ("zero-copies", lambda d: d["sections"][0].update(copies=0), "copies"),
])
def test_numbers_outside_sane_ranges_are_refused(tmp_path: Path, name: str, change: Any,
                                                  expect: str) -> None:
    path = _mutated(tmp_path, name, change)
    rc, _, err = vb("import", str(path))
    assert expect in _one_line_error(rc, err)
    assert not paths.results_dir().exists() or not list(paths.results_dir().iterdir())


@pytest.mark.parametrize(("text", "expect"), [
    ('{"schema_version": 1, "cpu": ' + "7" * 5000 + "}", "out of range"),
    ('{"a": NaN}', "NaN"),
    ('{"a": -Infinity}', "Infinity"),
    ('{"a": 1e400}', "out of range"),
    ("[" * 100_000, "nested too deeply"),
    ('{"a":' * 70 + "1" + "}" * 70, "nested too deeply"),
    (b"\xff\xfe{", "not UTF-8"),
])
def test_hostile_json_is_one_clear_error(text: str | bytes, expect: str) -> None:
    with pytest.raises(UsageError, match=expect) as info:
        parse_json(text, "f.json")
    assert len(str(info.value)) < 4 * MAX_QUOTE


def test_no_finalizer_runs_while_a_nesting_bomb_is_parsed() -> None:
    """At the recursion limit a finalizer cannot even report its error (CI: "Exception
    ignored in sys.unraisablehook: RecursionError" around ``db rebuild`` of a nesting bomb):
    the collector does not run while a document is parsed."""
    import gc

    from virtbench.safeio import parse_json

    ran: list[int] = []

    class Cycle:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            ran.append(1)

    threshold, bomb, failed = gc.get_threshold(), "[" * 100_000, ""
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            Cycle()
        gc.set_threshold(400)  # a few hundred allocations: the parser makes one list a level
        gc.enable()
        try:
            parse_json(bomb, "bomb.json")
        except UsageError as exc:
            failed = str(exc)
        during = len(ran)
        gc.collect()
    finally:
        gc.set_threshold(*threshold)
        gc.enable()
    assert "nested too deeply" in failed
    assert during == 0 and len(ran) == 50


def test_a_nesting_bomb_in_the_results_directory_breaks_no_command(tmp_path: Path) -> None:
    vb("import", "--label", "set=a", str(PV))
    (paths.results_dir() / "bomb.json").write_text("[" * 100_000)
    (paths.results_dir() / "big.json").write_text('{"id": ' + "9" * 5000 + "}")
    rc, out, err = vb("db", "rebuild")
    assert rc == 0 and "Traceback" not in err, err
    assert "bomb.json" in out + err
    for argv in (["show", "latest"], ["export", "set=a", "--format", "csv"],
                 ["report", "latest", "--format", "markdown"], ["runs"]):
        rc, out, err = vb(*argv)
        assert rc == 0 and "Traceback" not in err, (argv, err)
        assert out.strip()
    rc, _, err = vb("show", str(paths.results_dir() / "bomb.json"))
    _one_line_error(rc, err)  # "[[[..." is not taken for JSON: a report that is not one
    (paths.results_dir() / "bomb2.json").write_text('{"a":' * 100_000)
    rc, _, err = vb("show", str(paths.results_dir() / "bomb2.json"))
    assert "nested too deeply" in _one_line_error(rc, err)


def test_a_fifo_in_the_results_directory_does_not_block_db_rebuild() -> None:
    vb("import", str(PV))
    fifo = paths.results_dir() / "trap.json"
    os.mkfifo(fifo)
    proc = run_cli("db", "rebuild", timeout=60)  # blocked forever before the fix
    assert proc.returncode == 0, proc.stderr
    assert "trap.json" in proc.stdout + proc.stderr
    assert "not a regular file" in proc.stdout + proc.stderr
    with pytest.raises(UsageError, match="not a regular file"):
        read_regular(fifo)


def test_a_document_changed_to_inf_after_validation_is_refused_not_a_traceback(
        tmp_path: Path) -> None:
    from virtbench.results.model import RunResult

    doc = RunResult(profile="imported")
    doc.wall_seconds = float("inf")
    with pytest.raises(UsageError, match="cannot save"):
        doc.save(tmp_path / "d.json")
    assert not list(tmp_path.iterdir())


# ---- messages and signals ------------------------------------------------------------------


def test_messages_quote_at_most_200_characters_of_any_input(tmp_path: Path) -> None:
    long = "x" * 10_000_000
    rc, _, err = vb("import", "--label", long, str(PV))
    line = _one_line_error(rc, err)
    assert len(line) < 4 * MAX_QUOTE and "more characters" in line
    rc, _, err = vb("run", "-c", "9" * 1_000_000)
    line = _one_line_error(rc, err)
    assert len(line) < 4 * MAX_QUOTE
    assert clip_message("a\nb") == "a\\nb"


def test_ctrl_c_while_starting_is_one_line_not_a_traceback() -> None:
    # What the console script does (``from virtbench.cli import main``), then SIGINT at
    # moments within main()'s first 0.4 s, while it imports the command's modules: that
    # import was outside main's try. (Before ``virtbench.cli`` is imported, Python itself
    # is starting: its own traceback there is not virtbench's to catch.)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    code = ("import sys, virtbench.cli\nprint('ready', flush=True)\n"
            "raise SystemExit(virtbench.cli.main(['runs']))")
    seen_interrupted = 0
    for delay in (0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, (delay, err)
        if proc.returncode == 130:
            assert err.strip() == "virtbench: interrupted"
            seen_interrupted += 1
    assert seen_interrupted, "no SIGINT arrived while virtbench was starting"


def test_ctrl_c_from_the_first_moment_never_prints_virtbenchs_traceback() -> None:
    """``python -m virtbench`` (as the console script, through ``virtbench._entry``) with
    SIGINT from its first milliseconds on: while virtbench's modules are imported, before
    ``main`` is ready, a Ctrl-C ends the process as a SIGINT does (kill points saw a
    traceback from ``virtbench/cli/__init__.py`` at 20 ms and 'exit 1'). Python's own start-up
    (before ``virtbench._entry`` runs) is Python's to report; no frame of virtbench's may
    appear."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    outcomes: dict[str, int] = {}
    for i in range(24):
        proc = subprocess.Popen([sys.executable, "-m", "virtbench", "runs"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=env)
        time.sleep(i * 0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert "virtbench/" not in err and proc.returncode in (0, 130, -signal.SIGINT, 1), (
            i, proc.returncode, err)
        if proc.returncode == 130:
            assert err.strip() == "virtbench: interrupted", err
        if proc.returncode == 1:  # only Python's own start-up may fail that way
            assert "Traceback" in err and "virtbench" not in err, err
        key = {0: "ended", 130: "interrupted", 1: "python"}.get(proc.returncode, "signal")
        outcomes[key] = outcomes.get(key, 0) + 1
    assert outcomes.get("signal", 0) + outcomes.get("interrupted", 0) > 0, outcomes


# ---- concurrency ---------------------------------------------------------------------------


def test_concurrent_reimports_lose_no_label_and_the_index_agrees(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))  # the spawned writers import it from there too
    try:
        import concurrent_import

        lost, disagree, failures = concurrent_import.run(8, 4, str(tmp_path / "home"))
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert failures == []
    assert (lost, disagree) == (0, 0)


# ---- CI ------------------------------------------------------------------------------------


def test_a_hung_test_times_out_and_its_fixture_still_stops_its_daemon(tmp_path: Path) -> None:
    # The project's pytest configuration (pyproject.toml), a 2 s deadline instead of 300 s:
    # the hung test fails, and the fixture's finalizer stops the "daemon" it started.
    pidfile = tmp_path / "daemon.pid"
    (tmp_path / "test_hung.py").write_text(f'''
import subprocess, time
from collections.abc import Iterator
import pytest

@pytest.fixture
def daemon() -> Iterator[None]:
    proc = subprocess.Popen(["sleep", "600"])
    with open({str(pidfile)!r}, "w") as fh:
        fh.write(str(proc.pid))
    try:
        yield
    finally:
        proc.kill()
        proc.wait()

def test_hangs(daemon: None) -> None:
    time.sleep(600)
''')
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), "-o", "timeout=2",
         str(tmp_path / "test_hung.py")],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Timeout" in proc.stdout and "1 failed" in proc.stdout, proc.stdout
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the finalizer ran: the daemon is gone


# ---- bounds --------------------------------------------------------------------------------


def test_copies_beyond_what_the_machine_can_run_are_refused_before_anything_is_made(
        tmp_path: Path) -> None:
    from virtbench.runner.limits import check_copies, max_copies

    limit = max_copies()
    assert 1 <= limit.copies < 1 << 20, limit
    check_copies([1])
    with pytest.raises(UsageError, match="at most"):
        check_copies([1, limit.copies * 2 + 10])
    work = tmp_path / "work"
    work.mkdir()
    start = time.monotonic()
    rc, _, err = vb("run", "-c", "100000000", "--quick", "--tmpdir", str(work), "dhry2reg")
    line = _one_line_error(rc, err)
    assert "-c 100000000: this machine can run at most" in line
    assert time.monotonic() - start < 10
    assert not list(work.iterdir())  # not one work directory created


# ---- found by bench/fuzz.py ----------------------------------------------------------------


@pytest.mark.parametrize("version", [0, -1, True])
def test_a_schema_version_no_virtbench_wrote_is_refused(tmp_path: Path, version: Any) -> None:
    path = _mutated(tmp_path, f"v{version}", lambda d: d.update(schema_version=version))
    rc, _, err = vb("show", str(path))
    assert "schema" in _one_line_error(rc, err)


@pytest.mark.parametrize("command", ["show", "rm", "import", "migrate-check"])
def test_a_reference_too_long_for_a_path_is_one_line(command: str) -> None:
    rc, _, err = vb(command, "x" * 5000)
    line = _one_line_error(rc, err)
    assert "internal error" not in line and len(line) < 4 * MAX_QUOTE


def test_replacing_renames_on_success_and_keeps_the_previous_file_on_failure(
        tmp_path: Path) -> None:
    from virtbench.safeio import replacing

    target = tmp_path / "bundle.tar"
    target.write_text("previous")
    with pytest.raises(RuntimeError), replacing(target) as tmp:
        assert tmp.parent == tmp_path and tmp.is_file() and not tmp.is_symlink()
        tmp.write_text("half")
        raise RuntimeError("failed half-way")
    assert target.read_text() == "previous" and sorted(tmp_path.iterdir()) == [target]
    with replacing(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and sorted(tmp_path.iterdir()) == [target]


def test_a_denormal_score_whose_index_underflows_to_zero_is_imported(tmp_path: Path) -> None:
    # bench/fuzz.py report:182813824: "4.9e-324 lpm" gave an index of 0.0 and the
    # geometric mean of the index values raised (the importer's safety net caught it).
    text = (DATA / "unixbench-xen-hvm-synthesized.txt").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("Shell Scripts (1 concurrent)")
                and "lpm" in ln)
    score = line.split()[4]
    bad = tmp_path / "denormal.txt"
    bad.write_text(text.replace(line, line.replace(score, "4.9e-324", 1)))
    rc, out, err = vb("import", "--dry-run", "--json", str(bad))
    assert rc == 0, err
    assert "please report this" not in err
    section = json.loads(out)[0]["sections"][0]
    assert section["index_score"] is None  # not recomputable, and said so in a note


def test_output_to_a_fifo_nobody_reads_is_one_line_not_a_hang(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # bench/fuzz.py cli:2156858044: `report ... -o fifo.json` blocked in open() forever.
    import threading

    import virtbench.cli._common as common

    monkeypatch.setattr(common, "FIFO_READER_WAIT", 0.5)
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    rc, _, err = vb("export", str(PV), "--format", "csv", "-o", str(fifo))
    assert "no process reads this FIFO" in _one_line_error(rc, err)
    assert time.monotonic() - start < 30
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()  # a reader that opens the FIFO while virtbench waits for one
    # (not within 0.5 s: on a busy machine the reader thread may not have run by then)
    monkeypatch.setattr(common, "FIFO_READER_WAIT", 60.0)
    try:
        rc, _, err = vb("export", str(PV), "--format", "csv", "-o", str(fifo))
    finally:  # a reader still blocked in open() (no writer came) would hang pytest's exit
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=30)
    assert rc == 0, err
    assert got and b"dhry2reg" in got[0]


def test_the_fuzz_harness_runs_and_finds_nothing_on_a_small_sample() -> None:
    # Keeps bench/fuzz.py from rotting (an API it uses moved once); the figures in
    # docs/reliability.md come from the full 10,000-input run, not from this test.
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fuzz.py"), "--total", "100", "--workers", "1",
         "--process-share", "0.03"],
        capture_output=True, text=True, timeout=280, check=False, cwd="/",
        env=dict(os.environ, PYTHONPATH=str(SRC)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "tracebacks: 0" in proc.stdout and "hangs: 0" in proc.stdout
    total = next(ln for ln in proc.stdout.splitlines() if ln.startswith("total"))
    assert total.split()[1] == "100"
