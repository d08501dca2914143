"""virtbench fleet against REAL hosts: sshd instances on loopback ports (Debian's
openssh-server), each with its own host key, a test user with a key generated here, an
ordinary INI inventory with groups, one host without a C compiler on its PATH and one
host in the inventory that has no sshd.

The stories, in order (they share the hosts and one data directory):
1. `detect` on the fleet: the unreachable host and the one without a compiler fail with the
   reason, the others are in the
   store, labelled; `fleet results`/`status` show them. `--keep` leaves the venvs.
2. `run --quick dhry2reg`: one host is killed mid-run (its sshd and its processes), then the
   controller gets Ctrl-C while the others measure. `fleet resume` collects the others (their
   commands went on running) and lists the dead host with its reason; once it is back, a
   second resume redoes only it. The remote files are removed (no --keep).
3. A run abandoned after Ctrl-C: `fleet cancel` stops the command still running on the target
   and removes the host's directory (compile cache, run directories); the bundle stays.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SRC, gone, run_cli, wait_for

from virtbench.fleet.testbed import LocalFleet, pids_with_cmdline

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),  # fleet runs over real sshd hosts (commands bounded to 400 s)
    pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(),
                       reason="needs openssh-server (scripts/setup-dev.sh installs it)"),
    pytest.mark.skipif(shutil.which("ansible-playbook") is None
                       and not (Path(sys.executable).parent / "ansible-playbook").exists(),
                       reason="needs ansible-core"),
]

POLL = "1"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFleet]:
    base = Path(f"/tmp/vbft-{os.getpid()}")  # short: sshd and ssh control paths
    f = LocalFleet(base, 4, unreachable=1,
                   groups={"web": ["h1", "h2"], "db": ["h3"], "spare": ["h4", "h5"]})
    # h4 has no C compiler on its PATH; h5 has no sshd at all
    f.sshd_extra["h4"] = [f"SetEnv PATH={f.minimal_path()}"]
    with f:
        yield f


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    data = tmp_path_factory.mktemp("fleet-data")
    cache = os.environ.get("VIRTBENCH_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    return {"XDG_DATA_HOME": str(data), "XDG_CACHE_HOME": cache}


@pytest.fixture(autouse=True)
def _shared_data(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)


def state_of(env: dict[str, str], run_id: str) -> dict[str, Any]:
    path = Path(env["XDG_DATA_HOME"]) / "virtbench" / "fleet" / run_id / "state.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def fleet_id(stdout: str) -> str:
    return str(json.loads(stdout)["id"])


def store_runs(label: str) -> dict[str, Any]:
    """Documents in the store with the label fleet=<label>, by host."""
    from virtbench.store import load_recorded, open_store

    store = open_store()
    return {r.labels["host"]: load_recorded(r) for r in store.with_label("fleet", label)}


def _open_sessions(fleet: LocalFleet, wait: float = 60.0) -> list[int]:
    """sshd processes still serving a connection to the hosts (after up to ``wait`` s: a
    session's sshd ends after its client, when it is next scheduled, seconds later on a
    loaded machine)."""
    from virtbench.fleet.testbed import _children

    deadline = time.monotonic() + wait
    while True:
        left = [c for h in fleet.hosts if h.proc is not None for c in _children(h.proc.pid)
                if not gone(c, wait=0)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def test_a_killed_controllers_ssh_masters_are_closed_by_the_next_command(
        fleet: LocalFleet, env: dict[str, str]) -> None:
    """A fleet controller killed outright cannot close Ansible's SSH masters; the next
    virtbench command does (their directory names a process that is gone)."""
    from virtbench.fleet.ansible import CONTROL_PREFIX, _control_base

    dead = subprocess.Popen(["true"])
    dead.wait()
    # made under a live name (any virtbench running meanwhile would sweep a dead one), then
    # given the name of a controller that is gone
    live = _control_base() / f"{CONTROL_PREFIX}{os.getpid()}-x"
    d = _control_base() / f"{CONTROL_PREFIX}{dead.pid}-1"
    live.mkdir(parents=True, mode=0o700)
    h = fleet.host("h1")
    master = subprocess.run(
        ["ssh", "-fN", "-o", "ControlMaster=yes", "-o", "ControlPersist=120",
         "-o", f"ControlPath={live}/m", "-o", f"UserKnownHostsFile={fleet.known_hosts}",
         "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-i", str(fleet.key),
         "-p", str(h.port), f"{fleet.user}@{h.address}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    try:
        assert master.returncode == 0, master.stderr
        assert len(_open_sessions(fleet, wait=0)) >= 1
        live.rename(d)
        run_cli("runs", env=env, check=True)  # (or any virtbench that ran meanwhile)
        assert _open_sessions(fleet) == [] and not d.exists()
    finally:
        for p in (live, d):
            subprocess.run(["ssh", "-o", f"ControlPath={p}/m", "-O", "exit", "x"],
                           capture_output=True, check=False, timeout=10)
            shutil.rmtree(p, ignore_errors=True)


def test_detect_on_a_fleet_with_an_unreachable_host(fleet: LocalFleet,
                                                   env: dict[str, str]) -> None:
    t0 = time.monotonic()
    proc = run_cli("fleet", "run", "-i", str(fleet.inventory), "--deps", "ship", "--keep",
                   "--poll-interval", POLL, "--json", "--", "detect", env=env, timeout=400)
    assert proc.returncode == 1, proc.stderr  # one host failed
    # Ansible's SSH masters (ControlPersist, 60 s) are closed when the command ends: they
    # lingered a minute after every fleet command (bench/kill_points.py)
    assert _open_sessions(fleet) == [], "SSH connections outlived the fleet command"
    state = json.loads(proc.stdout)
    hosts = state["hosts"]
    assert [hosts[h]["status"] for h in ("h1", "h2", "h3")] == ["fetched"] * 3, proc.stderr
    assert hosts["h5"]["status"] == "failed"
    assert "unreachable" in hosts["h5"]["reason"] and "refused" in hosts["h5"]["reason"]
    assert "h5: unreachable" in proc.stderr  # failures listed with reasons
    assert hosts["h4"]["status"] == "failed"
    assert hosts["h4"]["reason"] == ("no C compiler (cc, gcc or clang); rerun with "
                                     "--install-deps"), hosts["h4"]
    docs = store_runs(state["id"])
    assert sorted(docs) == ["h1", "h2", "h3"]
    for host, doc in docs.items():
        assert doc.labels["groups"] == {"h1": "web", "h2": "web", "h3": "db"}[host]
        assert doc.experiment == "detect"
        report = doc.environment.virtualization
        assert report is not None and report.layers and report.layers[0].name  # VM, container
        assert not doc.notes  # a real report from a host: nothing dropped
    # --keep: the run directory is still on the targets; the bundle stays in any case, named
    # by its content hash, and was shipped once to each host (the lean bundle: <= 10 MB)
    for h in ("h1", "h2", "h3"):
        remote = Path(hosts[h]["remote_dir"])
        assert (Path(hosts[h]["run_dir"]) / "document.json").exists()
        cached = remote.parent / "bundles" / h / hosts[h]["bundle"]
        assert (cached / "lib" / "virtbench" / "__init__.py").exists()
        assert sorted(p.name for p in cached.parent.iterdir()) == [hosts[h]["bundle"]]
        assert 1_000_000 < hosts[h]["bytes_shipped"] <= 10_000_000, hosts[h]
    # the views
    res = run_cli("fleet", "results", state["id"], env=env, check=True)
    assert "h5" in res.stdout and "unreachable" in res.stdout
    assert "group web" in res.stdout and "virt " in res.stdout
    status = run_cli("fleet", "status", state["id"], env=env, check=True)
    assert "incomplete" in status.stdout and "no C compiler" in status.stdout
    assert "fleet resume" in status.stdout
    sys.stderr.write(f"detect fleet: {time.monotonic() - t0:.1f}s\n")


def test_the_bundle_goes_through_the_ssh_connection_the_preflight_opened(
        fleet: LocalFleet, env: dict[str, str]) -> None:
    """A host without the bundle gets it through its SSH master (a plain ssh client on the
    socket Ansible's preflight left, named by the inventory host): no Ansible task; so do
    its polls. A host
    whose master is gone by then (SIGKILL: its socket stays, stale) gets it from Ansible's
    ship playbook. Both run and are collected, and each counts the bundle's bytes once."""
    import io

    from virtbench.cli.fleet import check_command
    from virtbench.fleet import bundle as bundlemod
    from virtbench.fleet.ansible import _master_pids, close_masters, control_dir, control_name
    from virtbench.fleet.display import Display
    from virtbench.fleet.engine import Engine, Options
    from virtbench.fleet.state import FleetState, HostState, new_run_id

    for h in ("h1", "h2"):  # as on a first run: nothing cached on the hosts
        shutil.rmtree(fleet.home / ".cache" / "virtbench-fleet" / "bundles" / h,
                      ignore_errors=True)
    killed: list[int] = []

    class MasterLost(Engine):
        def ship_direct(self, names: list[str], bundles: dict[str, bundlemod.Bundle]
                        ) -> tuple[dict[str, Any], list[str]]:
            cp = control_dir()
            assert cp is not None and sorted(names) == ["h1", "h2"]
            socks = {n: cp / control_name(n) for n in names}
            assert all(s.is_socket() for s in socks.values()), list(cp.iterdir())
            pid = _master_pids(cp)[str(socks["h2"])]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert socks["h2"].is_socket()  # stale: a client must not connect on its own
            return super().ship_direct(names, bundles)

    info = check_command(["detect"])
    state = FleetState(id=new_run_id(), command=["detect"], inventory=str(fleet.inventory),
                       forks=10, options=Options(poll_interval=1.0,
                                                 output_option=info.takes_output).to_dict(),
                       hosts={h: HostState(name=h) for h in ("h1", "h2")})
    state.save()
    log = io.StringIO()
    try:
        MasterLost(state, Display(state, log)).run(["h1", "h2"])
    finally:
        close_masters()
    assert killed, log.getvalue()
    hosts = state.hosts
    assert [hosts[h].status for h in ("h1", "h2")] == ["fetched"] * 2, log.getvalue()
    assert "bundle sent to 1 host(s) through their open SSH connection, 1 through Ansible" \
        in log.getvalue()
    # only h2 went through Ansible's ship playbook (which opened a new master for it); the
    # polls went through the masters too: no poll playbook ran
    runner = state.dir / "runner"
    assert (runner / "limit-ship.txt").read_text() == "h2\n"
    assert not (runner / "limit-poll.txt").exists() and hosts["h1"].ssh_fastest is not None
    size = (Path(env["XDG_CACHE_HOME"]) / "virtbench" / "fleet" / "bundles").rglob(
        "bundle.tar.gz")
    sizes = {p.stat().st_size for p in size}
    assert hosts["h1"].bytes_shipped == hosts["h2"].bytes_shipped
    assert hosts["h1"].bytes_shipped in sizes and hosts["h1"].attempts == 1
    for h in ("h1", "h2"):
        cached = fleet.home / ".cache" / "virtbench-fleet" / "bundles" / h
        assert sorted(p.name for p in cached.iterdir()) == [hosts[h].bundle]


def test_a_ctrl_c_after_a_host_answered_loses_nothing(fleet: LocalFleet,
                                                      env: dict[str, str]) -> None:
    """Ctrl-C after a finished host's poll answered with its document, before the controller
    saved it: the host's files are still there, so `fleet resume` collects that run (once)
    instead of finding no run directory and running the command again (the poll used to
    remove them in the same session, before the controller had the document)."""
    import io

    from virtbench.cli.fleet import check_command
    from virtbench.fleet.ansible import close_masters
    from virtbench.fleet.display import Display
    from virtbench.fleet.engine import Engine, Options
    from virtbench.fleet.state import FleetState, HostState, new_run_id

    class CtrlCAfterAnswer(Engine):
        def _collected(self, n: str, stdout: str, facts: dict[str, list[str]]) -> str:
            raise KeyboardInterrupt  # the Ctrl-C lands once the host has answered

    info = check_command(["detect"])
    state = FleetState(id=new_run_id(), command=["detect"], inventory=str(fleet.inventory),
                       forks=10, options=Options(poll_interval=1.0,
                                                 output_option=info.takes_output).to_dict(),
                       hosts={"h1": HostState(name="h1")})
    state.save()
    log = io.StringIO()
    try:
        with pytest.raises(KeyboardInterrupt):
            CtrlCAfterAnswer(state, Display(state, log)).run(["h1"])
    finally:
        close_masters()
    h = state.hosts["h1"]
    assert h.status == "running" and h.attempts == 1, log.getvalue()
    assert h.run_dir and (Path(h.run_dir) / "document.json").exists()  # still on the host
    state = FleetState.load(state.id)
    try:
        Engine(state, Display(state, log)).run(["h1"])
    finally:
        close_masters()
    h = state.hosts["h1"]
    assert h.status == "fetched" and h.attempts == 1 and len(h.run_ids) == 1, log.getvalue()
    assert sorted(store_runs(state.id)) == ["h1"]
    assert h.cleaned and h.remote_dir and not Path(h.remote_dir).exists()  # then removed


def _start(fleet: LocalFleet, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    full = {**os.environ, **env, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(
        [sys.executable, "-m", "virtbench", "fleet", "run", "-i", str(fleet.inventory),
         "--deps", "ship", "--poll-interval", POLL, "--json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full,
    )


def _wait_for(env: dict[str, str], pred: Any, proc: subprocess.Popen[str],
              timeout: float = 240) -> dict[str, Any]:
    root = Path(env["XDG_DATA_HOME"]) / "virtbench" / "fleet"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"fleet exited early ({proc.returncode}):\n{err}")
        states = sorted(root.glob("*/state.json"), key=lambda p: p.stat().st_mtime)
        if states:
            try:
                st: dict[str, Any] = json.loads(states[-1].read_text())
            except json.JSONDecodeError:
                st = {}
            if st and pred(st):
                return st
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"timed out; stderr:\n{proc.communicate()[1]}")


def _pythons_naming(fragment: str) -> list[int]:
    """Python processes whose command line contains ``fragment``."""
    found = []
    for pid in pids_with_cmdline(fragment):
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith("python"):
                found.append(pid)
        except OSError:
            continue
    return found


def test_killed_host_and_ctrl_c_then_resume_loses_nothing(fleet: LocalFleet,
                                                           env: dict[str, str]) -> None:
    """One host dies mid-run, then the controller is interrupted while the others measure:
    the first resume collects the others (not re-run) and lists the dead host with its
    reason; once the host is back, the second resume redoes only it. No --keep: the remote
    files are removed."""
    t0 = time.monotonic()
    proc = _start(fleet, env, "--limit", "web:db", "--", "run", "--quick", "-c", "1",
                  "dhry2reg")
    st = _wait_for(env, lambda s: all(
        s["hosts"][h]["status"] == "running" and (Path(s["hosts"][h]["run_dir"]) / "pid").exists()
        for h in ("h1", "h2", "h3")), proc)
    # h3 dies mid-run: once its detached shell has started virtbench (a python whose command
    # line names its run directory), not after a fixed half second
    run_dir = st["hosts"]["h3"]["run_dir"] + "/"
    wait_for(lambda: _pythons_naming(run_dir), f"virtbench to start in {run_dir}",
             timeout=120, unless_failed=proc)
    killed = fleet.kill_host("h3", remote_fragment=st["hosts"]["h3"]["remote_dir"] + "/")
    assert len(killed) >= 3  # sshd, its sessions, the remote command
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    state = json.loads(out)
    assert state["status"] == "interrupted"
    assert state["hosts"]["h3"]["status"] == "running"  # not polled enough to be given up
    # (on a fast machine h1/h2 may already be done and fetched before the Ctrl-C)
    assert all(state["hosts"][h]["status"] in ("running", "fetched") for h in ("h1", "h2"))
    assert f"fleet resume {state['id']}" in err
    status = run_cli("fleet", "status", state["id"], env=env, check=True)
    assert "interrupted" in status.stdout and "running" in status.stdout

    # h3 is still dead: h1 and h2 are collected (their commands went on running)
    res = run_cli("fleet", "resume", state["id"], "--poll-interval", POLL, "--json", env=env,
                  timeout=300)
    assert res.returncode == 1, res.stderr
    hosts = json.loads(res.stdout)["hosts"]
    for h in ("h1", "h2"):
        assert hosts[h]["status"] == "fetched" and hosts[h]["attempts"] == 1, hosts[h]
    assert hosts["h3"]["status"] == "failed"
    assert "unreachable while its command ran" in hosts["h3"]["reason"], hosts["h3"]
    assert "h3: unreachable while its command ran" in res.stderr  # listed with the reason
    docs = store_runs(state["id"])
    assert sorted(docs) == ["h1", "h2"]
    for h in ("h1", "h2"):
        test = docs[h].sections[0].tests[0]
        assert test.test == "dhry2reg" and test.status == "ok" and (test.score or 0) > 0
        assert docs[h].mode == "quick" and docs[h].labels["groups"] == "web"
        # no --keep: the host's virtbench directory is gone
        assert hosts[h]["cleaned"] and not Path(hosts[h]["remote_dir"]).exists()
        # the bundle cached by the first test was intact: nothing shipped
        assert hosts[h]["bytes_shipped"] == 0, hosts[h]
        # launched without Ansible's async wrapper: no job file anywhere on the target
        assert hosts[h]["job_file"] is None and hosts[h]["job_id"]
        if fleet.home.is_relative_to(fleet.base):  # the testbed's own user (as root)
            assert not list(fleet.home.glob(".ansible_async/*"))
    before = {h: hosts[h]["run_ids"] for h in ("h1", "h2")}

    # h3 is back: only it is redone
    fleet.restart_host("h3")
    res = run_cli("fleet", "resume", state["id"], "--poll-interval", POLL, "--json", env=env,
                  timeout=300)
    assert res.returncode == 0, res.stderr
    after = json.loads(res.stdout)["hosts"]
    assert all(after[h]["status"] == "fetched" for h in ("h1", "h2", "h3")), res.stderr
    assert {h: after[h]["run_ids"] for h in ("h1", "h2")} == before
    assert after["h1"]["attempts"] == after["h2"]["attempts"] == 1
    assert after["h3"]["attempts"] == 2
    # collected once: re-attached and started again, it was polled (and imported) twice
    assert len(after["h3"]["run_ids"]) == 1, after["h3"]
    docs = store_runs(state["id"])
    assert docs["h3"].status == "complete" and docs["h3"].labels["groups"] == "db"
    assert not Path(after["h3"]["remote_dir"]).exists()
    table = run_cli("fleet", "results", state["id"], "--json", env=env, check=True)
    rows = {r["host"]: r for r in json.loads(table.stdout)["hosts"]}
    assert all((rows[h]["score"] or 0) > 0 for h in ("h1", "h2", "h3"))
    assert rows["h1"]["partial"]  # one test of twelve
    sys.stderr.write(f"killed host + ctrl-c + 2 resumes: {time.monotonic() - t0:.1f}s\n")


def _programs_in(directory: str) -> list[int]:
    """Processes running a program from ``directory`` (their argv[0])."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            except OSError:
                continue
            if argv0.decode(errors="replace").startswith(directory):
                found.append(int(entry.name))
    return found


def test_cancel_stops_the_detached_command_and_cleans_up(fleet: LocalFleet,
                                                         env: dict[str, str]) -> None:
    """A run abandoned after Ctrl-C: `fleet cancel` stops the command still running on the
    target (every process of it) and removes the host's virtbench directory there; the
    bundle cache stays."""
    # a standard dhry2reg (10 passes of 10 s) still runs when cancel comes, on any machine
    # (a quick run of 4 tests had sometimes ended by then on a loaded one)
    proc = _start(fleet, env, "--limit", "h1", "--poll-interval", "30", "--", "run",
                  "-c", "1", "dhry2reg")
    st = _wait_for(env, lambda s: s["hosts"]["h1"]["status"] == "running"
                   and (Path(s["hosts"]["h1"]["run_dir"]) / "pid").exists(), proc)
    remote = st["hosts"]["h1"]["remote_dir"]
    # past the build: a copy runs (a process group of its own) and virtbench saves its
    # document after each test (an old cancel's leftovers came from that)
    _wait_for(env, lambda s: bool(_programs_in(remote + "/cache/virtbench/build/")), proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert pids_with_cmdline(remote + "/"), "the detached command should still be running"
    res = run_cli("fleet", "cancel", st["id"], env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    state = state_of(env, st["id"])
    h1 = state["hosts"]["h1"]
    assert state["status"] == "cancelled"
    assert h1["status"] == "failed" and h1["reason"] == "cancelled: its command was stopped", h1
    # stopped by cancel itself, before it removed anything: no process of the command is left
    # once it returns (the old snippet's `kill -- -PGID` failed in dash and stopped nothing;
    # the command then died of its removed files, and re-created some of them on the way
    # out in about half the runs)
    assert not pids_with_cmdline(remote + "/")
    assert h1["cleaned"] and not Path(remote).exists()
    time.sleep(1)
    assert not Path(remote).exists()
    # the bundle cache is kept by design (docs/fleet.md): the next fleet run ships nothing
    assert (Path(remote).parent / "bundles" / "h1" / h1["bundle"] / "lib").is_dir()
