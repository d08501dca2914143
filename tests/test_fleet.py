"""virtbench fleet: the parts that need no SSH (inventory flattening, preflight parsing,
command checks, state, the fleet table with its outliers). The real-host scenarios are
in test_fleet_hosts.py, the target bundle in test_fleet_bundle.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from conftest import gone
from virtbench.cli.fleet import check_command as validate
from virtbench.errors import UsageError
from virtbench.fleet import bundle, scripts
from virtbench.fleet.ansible import hosts_from_listing
from virtbench.fleet.command import remote_command
from virtbench.fleet.state import FleetState, HostState, list_runs
from virtbench.report.fleet import build_table, render_table, row_for, table_for_documents
from virtbench.results.model import RunResult, Section, TestResult

# ---- inventory --------------------------------------------------------------------------------


def test_hosts_from_listing_includes_parent_groups_in_order() -> None:
    listing = {
        "_meta": {"hostvars": {}},
        "all": {"children": ["ungrouped", "prod", "db"]},
        "prod": {"children": ["web"]},
        "web": {"hosts": ["w1", "w2"]},
        "db": {"hosts": ["d1", "w2"]},
        "ungrouped": {"hosts": ["lonely"]},
    }
    hosts = {h.name: h.groups for h in hosts_from_listing(listing)}
    assert list(hosts) == ["lonely", "w1", "w2", "d1"]
    assert hosts["w1"] == ("prod", "web")
    assert hosts["w2"] == ("db", "prod", "web")
    assert hosts["lonely"] == ()


def test_list_hosts_reads_a_real_ini_inventory_with_limit(tmp_path: Path) -> None:
    from virtbench.fleet.ansible import list_hosts

    inv = tmp_path / "hosts.ini"
    inv.write_text("a1 ansible_host=127.0.0.1\n[web]\nw1\nw2\n[db]\nd1\n"
                   "[prod:children]\nweb\n")
    names = [h.name for h in list_hosts(str(inv))]
    assert sorted(names) == ["a1", "d1", "w1", "w2"]
    web = list_hosts(str(inv), "prod")
    assert [(h.name, h.groups) for h in web] == [("w1", ("prod", "web")),
                                                  ("w2", ("prod", "web"))]
    with pytest.raises(UsageError, match="no such file"):
        list_hosts(str(tmp_path / "missing.ini"))


def test_ansible_env_keeps_host_key_checking_and_tunes_only_what_the_user_left_unset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from virtbench.fleet.ansible import ansible_env

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("ANSIBLE_CONFIG", "ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_PIPELINING",
                "ANSIBLE_SSH_ARGS", "ANSIBLE_INTERNAL_POLL_INTERVAL"):
        monkeypatch.delenv(var, raising=False)
    if Path("/etc/ansible/ansible.cfg").exists():
        pytest.skip("a system-wide ansible.cfg decides")
    env = ansible_env(persist=95)
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "True"  # ansible-runner would turn it off
    assert env["ANSIBLE_PIPELINING"] == "True"
    # tuned for many hosts: no compression, masters outlive a poll, a calmer result loop
    assert env["ANSIBLE_SSH_ARGS"] == "-o ControlMaster=auto -o ControlPersist=95s"
    assert env["ANSIBLE_INTERNAL_POLL_INTERVAL"] == "0.02"
    (tmp_path / "ansible.cfg").write_text("[defaults]\nhost_key_checking = False\n"
                                          "internal_poll_interval = 0.001\n"
                                          "[connection]\npipelining = False\n"
                                          "[ssh_connection]\nssh_args = -C\n")
    env = ansible_env()
    assert env["ANSIBLE_HOST_KEY_CHECKING"] == "False"
    for var in ("ANSIBLE_PIPELINING", "ANSIBLE_SSH_ARGS", "ANSIBLE_INTERNAL_POLL_INTERVAL"):
        assert var not in env  # the user's configuration decides
    assert env["ANSIBLE_CONFIG"] == str(tmp_path / "ansible.cfg")


# ---- preflight and scripts --------------------------------------------------------------------


def test_parse_facts_strips_tty_carriage_returns() -> None:
    out = ("vb-uid=1000\r\nvb-python=/usr/bin/python3 3.11.2 1\r\n"
           "vb-python=/usr/bin/python3.12 3.12.1 0\r\nnoise\r\nvb-preflight-done\r\n")
    facts = scripts.parse_facts(out)
    assert facts["uid"] == ["1000"]
    assert facts["python"] == ["/usr/bin/python3 3.11.2 1", "/usr/bin/python3.12 3.12.1 0"]
    assert "preflight-done" in facts


def test_preflight_script_runs_here_and_finds_python_and_cc() -> None:
    import subprocess

    out = subprocess.run(["/bin/sh", "-c", scripts.preflight(None)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    facts = scripts.parse_facts(out)
    assert "preflight-done" in facts
    assert facts["machine"][0]
    versions = [line.split()[1] for line in facts["python"]]
    assert any(tuple(int(x) for x in v.split(".")[:2]) >= (3, 11) for v in versions)
    assert facts["cc"] and "cc-works" in facts
    # the interpreter the inventory names comes first
    out = subprocess.run(["/bin/sh", "-c", f"VB_PY={sys.executable}\n" + scripts.preflight(None)],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert scripts.parse_facts(out)["python"][0].split()[0] == sys.executable
    assert "bundle" not in facts  # not asked


def test_preflight_lists_the_bundles_a_host_holds(tmp_path: Path) -> None:
    """The launch ships the bundle at once to a host whose cache does not hold it (no
    vb:start to find that out): the preflight lists the bundle directories, under $HOME."""
    import subprocess

    cache = tmp_path / "home" / ".cache" / "virtbench-fleet" / "bundles" / "h 1"
    for name in ("a" * 64, "b" * 64):
        (cache / name).mkdir(parents=True)
    (cache / ("c" * 64 + ".tar.gz")).write_text("")  # a file is not a bundle
    word = '"$HOME"/.cache/virtbench-fleet/bundles/' + scripts.q("h 1")
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    out = subprocess.run(["/bin/sh", "-c", scripts.preflight(None, word)], capture_output=True,
                         text=True, check=True, timeout=60, env=env).stdout
    facts = scripts.parse_facts(out)
    assert sorted(facts["bundle"]) == ["a" * 64, "b" * 64] and "preflight-done" in facts
    shutil.rmtree(cache)
    out = subprocess.run(["/bin/sh", "-c", scripts.preflight(None, word)], capture_output=True,
                         text=True, check=True, timeout=60, env=env).stdout
    assert "bundle" not in scripts.parse_facts(out) and "vb-preflight-done" in out


def test_snippets_carry_no_jinja_markers_and_quote_paths() -> None:
    p = scripts.RemotePaths(base="/h/x y", host_dir="/h/x y/h1", run_dir="/h/x y/h1/run-1")
    for s in (scripts.poll(p, "/usr/bin/python3", "document.json"),
              scripts.cleanup(p, "/h/.ansible_async/1.2"),
              scripts.start(p, "/usr/bin/python3", "k", ["run", "--quick"], "stdout.log",
                            timeout=60),
              scripts.ship(p, "/usr/bin/python3", "k", ["detect"], "document.json",
                           timeout=60)):
        assert "{{" not in s and "{%" not in s
        assert "'/h/x y/h1" in s or "'/h/x y/h1/run-1'" in s or "'/h/x y/bundles/h1" in s
    assert p.bundle_dir("k") == "/h/x y/bundles/h1/k"  # outside the host directory: kept
    with pytest.raises(ValueError):
        scripts._check("echo {{ x }}")


def test_poll_snippet_reports_running_done_dead_missing_and_collects(tmp_path: Path) -> None:
    import base64
    import os
    import subprocess

    run_dir = tmp_path / "h1" / "run"
    p = scripts.RemotePaths(base=str(tmp_path), host_dir=str(tmp_path / "h1"),
                            run_dir=str(run_dir))

    def poll() -> tuple[dict[str, list[str]], str]:
        out = subprocess.run(["/bin/sh", "-c", scripts.poll(p, sys.executable, "doc.json")],
                             capture_output=True, text=True, check=True).stdout
        return scripts.parse_facts(out), out

    assert poll()[0]["state"] == ["missing"]
    run_dir.mkdir(parents=True)
    (run_dir / "pid").write_text(f"{os.getpid()}\n")
    assert poll()[0] == {"state": ["running"]}  # nothing else while it runs
    dead = subprocess.Popen(["true"])
    dead.wait()
    (run_dir / "pid").write_text(f"{dead.pid}\n")
    # the command is gone but its launching shell is writing rc: still running
    (run_dir / "spid").write_text(f"{os.getpid()}\n")
    assert poll()[0] == {"state": ["running"]}
    (run_dir / "spid").write_text(f"{dead.pid}\n")
    facts, _out = poll()
    assert facts["state"] == ["dead"] and "rc" not in facts
    doc = '{"a": "caf\u00e9 \\u00e9"}\n' * 50
    (run_dir / "doc.json").write_text(doc)
    (run_dir / "stderr.log").write_text("line 1\nvirtbench: the last line\n")
    (run_dir / "rc").write_text("3\n")
    files = sorted(f.name for f in run_dir.iterdir())
    for _ in range(2):  # an answer lost on the way is given again: the poll removes nothing
        facts, out = poll()
        assert facts["state"] == ["done"] and facts["rc"] == ["3"] and "cleaned" not in facts
        encoded = "".join(scripts.between(out, "vb-doc-begin", "vb-doc-end").split())
        assert base64.b64decode(encoded).decode() == doc
        assert scripts.between(out, "vb-stderr-begin", "vb-stderr-end").strip() == \
            "line 1\nvirtbench: the last line"
        assert sorted(f.name for f in run_dir.iterdir()) == files


def test_start_snippet_detaches_the_command_and_records_its_pid_and_status(
        tmp_path: Path) -> None:
    """The launch without Ansible: a fake bundle whose virtbench prints its argv; the start
    script returns with the pid while the command still runs (it waits for the test's word),
    the command's exit status lands in rc."""
    import contextlib
    import subprocess
    import time

    from virtbench.fleet import target_tool

    p = scripts.RemotePaths(base=str(tmp_path), host_dir=str(tmp_path / "h1"),
                            run_dir=str(tmp_path / "h1" / "run-1"))
    lib = tmp_path / "tree" / "lib" / "virtbench"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "__main__.py").write_text("import os, sys, time\n"
                                     "while not os.path.exists('go'):\n"
                                     "    time.sleep(0.02)\n"
                                     "print(' '.join(sys.argv[1:]), os.environ["
                                     "'VIRTBENCH_FLEET_TARGET'])\nsys.exit(4)\n")
    h = target_tool.tree_hash(str(tmp_path / "tree"))
    assert h is not None
    Path(p.bundles).mkdir(parents=True)
    (tmp_path / "tree").rename(p.bundle_dir(h))
    rc = Path(p.run_dir) / "rc"
    try:
        # detached: the session ends while the command waits (a start that waited for it
        # would not end before the command's own 60 s timeout)
        out = subprocess.run(["/bin/sh", "-c", scripts.start(p, sys.executable, h, ["detect"],
                                                             "document.json", timeout=60)],
                             capture_output=True, text=True, check=True, timeout=60).stdout
        facts = scripts.parse_facts(out)
        assert facts["ready"] == ["1"] and facts["launched"][0].isdigit()
        assert not gone(int(facts["launched"][0]), wait=0) and not rc.exists()
    finally:
        with contextlib.suppress(OSError):
            (Path(p.run_dir) / "go").touch()  # the command may end now
    deadline = time.monotonic() + 60
    while not rc.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rc.read_text().strip() == "4"
    assert (Path(p.run_dir) / "document.json").read_text() == "detect 1\n"
    # no bundle there: the script asks for it and starts nothing
    out = subprocess.run(["/bin/sh", "-c", scripts.start(p, sys.executable, "0" * 64,
                                                         ["detect"], "document.json",
                                                         timeout=60)],
                         capture_output=True, text=True, check=True).stdout
    assert scripts.parse_facts(out) == {"ready": ["0"]}


# A fake virtbench for the cancel snippet: it starts a "copy" leading a process group of its
# own (as the executor's copies do) that writes into the host's cache while it runs, then
# waits; on SIGTERM it exits at once without stopping the copy when ORPHAN is set (as a
# virtbench killed before it could), else it kills the copy's group first.
_FAKE_VIRTBENCH = """\
import os, signal, subprocess, sys, time
cache = os.environ["XDG_CACHE_HOME"]
copy = subprocess.Popen([sys.executable, "-c", "import os, sys, time\\n"
                         "while True:\\n"
                         "    os.makedirs(sys.argv[1], exist_ok=True); time.sleep(0.05)",
                         cache + "/virtbench/build"], process_group=0)
open("copy.pid", "w").write(str(copy.pid))
def stop(signum, frame):
    if not os.environ.get("ORPHAN"):
        os.killpg(copy.pid, signal.SIGKILL)
        copy.wait()
    sys.exit(143)
signal.signal(signal.SIGTERM, stop)
time.sleep(120)
"""


@pytest.mark.parametrize("orphan", [False, True])
def test_cancel_snippet_stops_the_whole_command_then_removes_the_host_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, orphan: bool) -> None:
    """Launched by the real start snippet and cancelled by the real cancel snippet, both with
    /bin/sh (dash on Debian: its ``kill`` refused ``-- -PGID``, and the old snippet stopped
    nothing, said it had, and removed the directory under the running command). Once cancel
    returns, every process of the command is gone (a copy orphaned by its virtbench too: it
    gets the SIGKILL) and the host's directory with it; the bundle stays."""
    import signal
    import subprocess
    import time

    from virtbench.fleet import target_tool

    monkeypatch.setattr(scripts, "STOP_GRACE_S", 1)
    p = scripts.RemotePaths(base=str(tmp_path), host_dir=str(tmp_path / "h1"),
                            run_dir=str(tmp_path / "h1" / "run-1"))
    lib = tmp_path / "tree" / "lib" / "virtbench"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("")
    (lib / "__main__.py").write_text(_FAKE_VIRTBENCH)
    h = target_tool.tree_hash(str(tmp_path / "tree"))
    assert h is not None
    Path(p.bundles).mkdir(parents=True)
    (tmp_path / "tree").rename(p.bundle_dir(h))
    env = {**os.environ, "ORPHAN": "1" if orphan else ""}
    out = subprocess.run(["/bin/sh", "-c", scripts.start(p, sys.executable, h, ["run"],
                                                         "stdout.log", timeout=600)],
                         capture_output=True, text=True, check=True, timeout=60, env=env)
    run_dir = Path(p.run_dir)
    deadline = time.monotonic() + 30
    while not (run_dir / "copy.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [int((run_dir / f).read_text()) for f in ("spid", "pid", "copy.pid")]
    pids.append(int(scripts.parse_facts(out.stdout)["launched"][0]))
    try:
        assert not any(gone(pid, wait=0) for pid in pids)
        res = subprocess.run(["/bin/sh", "-c", scripts.cancel(p, None, keep=False)],
                             capture_output=True, text=True, timeout=60, check=True)
        assert [pid for pid in pids if not gone(pid, wait=0)] == []  # at once: no wait here
        facts = scripts.parse_facts(res.stdout)
        assert facts == {"cancelled": ["1"], "removed": ["1"]}, (res.stdout, res.stderr)
        time.sleep(0.3)  # nothing recreates the directory afterwards
        assert not Path(p.host_dir).exists()
        assert Path(p.bundle_dir(h), "lib", "virtbench", "__main__.py").exists()  # kept
        # nothing left to stop: the snippet says so and removes nothing more
        res = subprocess.run(["/bin/sh", "-c", scripts.cancel(p, None, keep=False)],
                             capture_output=True, text=True, timeout=60, check=True)
        assert scripts.parse_facts(res.stdout) == {"removed": ["1"]}
    finally:  # on a failure, nothing of the command stays behind
        for pid in pids:
            if not gone(pid, wait=0):
                os.kill(pid, signal.SIGKILL)


def test_cancel_snippet_with_keep_stops_the_command_and_keeps_its_files(
        tmp_path: Path) -> None:
    """``--keep``: the command's processes are gone, its run directory stays. A command
    without the launching shell's pid (started by an older virtbench) is stopped by its
    process group."""
    import subprocess

    p = scripts.RemotePaths(base=str(tmp_path), host_dir=str(tmp_path / "h1"),
                            run_dir=str(tmp_path / "h1" / "run-1"))
    run_dir = Path(p.run_dir)
    run_dir.mkdir(parents=True)
    marker = str(tmp_path / "sleeper")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker],
                            process_group=0)
    try:
        (run_dir / "pid").write_text(f"{proc.pid}\n")
        res = subprocess.run(["/bin/sh", "-c", scripts.cancel(p, None, keep=True)],
                             capture_output=True, text=True, timeout=60, check=True)
        assert scripts.parse_facts(res.stdout) == {"cancelled": ["1"]}, res
        assert proc.wait(timeout=60) == -15  # the SIGTERM, once
        assert sorted(f.name for f in run_dir.iterdir()) == ["pid"]
        # cancelled again: nothing runs any more, without an exit status, then with one
        res = subprocess.run(["/bin/sh", "-c", scripts.cancel(p, None, keep=True)],
                             capture_output=True, text=True, timeout=60, check=True)
        assert scripts.parse_facts(res.stdout) == {"gone": ["1"]}, res
        (run_dir / "rc").write_text("0\n")
        res = subprocess.run(["/bin/sh", "-c", scripts.cancel(p, None, keep=True)],
                             capture_output=True, text=True, timeout=60, check=True)
        assert scripts.parse_facts(res.stdout) == {"ended": ["0"]}, res
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()


def test_install_deps_names_python_and_a_compiler_per_package_manager() -> None:
    apt = scripts.install_deps("apt-get")
    assert apt is not None and "python3 " in apt and "gcc" in apt and "libc6-dev" in apt
    # the bundle runs on PYTHONPATH: no venv module (Debian's python3-venv) on the target
    assert "venv" not in apt
    dnf = scripts.install_deps("dnf")
    assert dnf is not None and "python3.12" in dnf and "gcc" in dnf
    apk = scripts.install_deps("apk")
    assert apk is not None and "musl-dev" in apk
    assert scripts.install_deps("") is None and scripts.install_deps("brew") is None


def test_ssh_failures_come_with_what_to_do() -> None:
    from virtbench.fleet.engine import TaskResult, ssh_hint

    r = TaskResult("unreachable", {"msg": "Task failed: Failed to connect to the host via ssh: "
                                          "Host key verification failed.", "unreachable": True})
    assert r.message() == "Host key verification failed."
    assert "known_hosts" in ssh_hint(r.message())
    assert "ansible_user" in ssh_hint("root@10.0.0.1: Permission denied (publickey).")
    assert ssh_hint("ssh: connect to host 127.0.0.1 port 22: Connection refused") == ""


def test_platform_tags_from_libc() -> None:
    tags = bundle.platform_tags("x86_64", "glibc 2.36")
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags
    assert bundle.platform_tags("aarch64", "musl 1.2")[0] == "musllinux_1_2_aarch64"


# ---- the command ------------------------------------------------------------------------------


def test_validate_refuses_bad_commands_with_clear_messages() -> None:
    with pytest.raises(UsageError, match="no command"):
        validate([])
    with pytest.raises(UsageError, match="fleet cannot run `fleet`"):
        validate(["fleet", "status"])
    with pytest.raises(UsageError, match="unknown virtbench command"):
        validate(["frobnicate"])
    with pytest.raises(UsageError, match="invalid"):
        validate(["run", "--copies", "zero"])
    with pytest.raises(UsageError, match="--output"):
        validate(["run", "--quick", "-o", "x.json"])
    validate(["detect"])
    validate(["run", "--quick", "dhry2reg"])


def test_remote_command_writes_the_document_to_a_file() -> None:
    argv, out, doc = remote_command(["run", "--quick"], "/r",
                                    validate(["run", "--quick"]).takes_output)
    assert argv == ["run", "--quick", "--output", "/r/document.json"]
    assert (out, doc) == ("stdout.log", "document.json")
    argv, out, doc = remote_command(["detect"], "/r", validate(["detect"]).takes_output)
    assert argv == ["detect", "--json"] and out == doc == "document.json"
    # sub-sub-commands: the options of `io seqread`, not of `io`; every experiment has
    # --output now, so a host killed mid-run keeps its partial document
    info = validate(["io", "seqread", "--size", "1G"])
    argv, out, doc = remote_command(["io", "seqread", "--size", "1G"], "/r", info.takes_output)
    assert argv[-2:] == ["--output", "/r/document.json"] and out == "stdout.log"


# ---- state ------------------------------------------------------------------------------------


def test_state_round_trip_and_prefix_lookup() -> None:
    st = FleetState(id="20990101-000000-abcd", command=["detect"], inventory="/x/hosts",
                    hosts={"h1": HostState(name="h1", groups=["web"], status="fetched",
                                           run_ids=["r1"]),
                           "h2": HostState(name="h2", status="failed", reason="unreachable")})
    st.save()
    back = FleetState.load("20990101-000000")
    assert back.to_dict() == st.to_dict()
    assert [h.name for h in back.unfinished()] == ["h2"]
    assert back.counts()["fetched"] == 1 and back.counts()["failed"] == 1
    assert [s.id for s in list_runs()] == [st.id]
    with pytest.raises(UsageError, match="no fleet run"):
        FleetState.load("nope")
    doc = json.loads(st.state_path.read_text())
    assert doc["type"] == "virtbench.fleet"


# ---- the table --------------------------------------------------------------------------------
BASE = {"dhry2reg": 116700.0, "whetstone-double": 55.0, "syscall": 15000.0, "pipe": 12440.0,
        "context1": 4000.0, "spawn": 126.0, "execl": 43.0}
HVM = {"dhry2reg": 2017.5, "whetstone-double": 600.0, "syscall": 1336.9, "pipe": 1055.5,
       "context1": 682.3, "spawn": 912.8, "execl": 700.0}
PV = {"dhry2reg": 2023.7, "whetstone-double": 600.0, "syscall": 208.2, "pipe": 293.4,
      "context1": 160.2, "spawn": 208.8, "execl": 200.0}


def make_run(host: str, groups: str, indexes: dict[str, float], scale: float = 1.0,
             virt: str = "kvm") -> RunResult:
    tests = []
    for tid, idx in indexes.items():
        value = idx * scale
        tests.append(TestResult(test=tid, name=tid, unit="lps", copies=1,
                                score=value * BASE[tid] / 10, baseline=BASE[tid],
                                index=value, samples=2))
    run = RunResult(profile="unixbench-6", mode="quick", comparable=False, status="complete",
                    sections=[Section(copies=1, tests=tests)],
                    labels={"fleet": "f1", "host": host, "groups": groups})
    run.environment.virtualization = {
        "summary": virt, "layers": [{"kind": "hypervisor", "name": virt, "variant": None}]}
    run.environment.hostname = "same-machine"
    return run


def test_outlier_more_than_3_mad_below_group_median_is_marked_and_explained() -> None:
    docs = [make_run("w1", "web", HVM, 1.00), make_run("w2", "web", HVM, 1.01),
            make_run("w3", "web", HVM, 0.99), make_run("w4", "web", HVM, 1.02),
            make_run("w5", "web", PV, 1.0, virt="xen")]
    t = table_for_documents(docs)
    rows = {r.host: r for r in t.rows}
    assert rows["w5"].outlier_in == ["group:web", "fleet"]
    assert all(not rows[h].outlier_in for h in ("w1", "w2", "w3", "w4"))
    web = next(g for g in t.groups if g.by == "group" and g.name == "web")
    scores = sorted(r.score for r in t.rows if r.score is not None)
    assert web.median == pytest.approx(scores[2])
    assert web.threshold is not None and rows["w5"].score is not None
    assert rows["w5"].score < web.threshold < min(rows[h].score or 0 for h in ("w1", "w2"))
    # explain: the PV-like kernel-entry profile is named, against the median host
    text = " ".join(rows["w5"].findings)
    assert "below the web median" in text and "[" in text, rows["w5"].findings
    # the xen host is alone in its virtualization group: no threshold there
    xen = next(g for g in t.groups if g.by == "virtualization" and g.name == "xen")
    assert xen.threshold is None and xen.outliers == []
    out = render_table(t)
    assert "OUTLIER in group:web, fleet" in out and "w5" in out


@pytest.mark.parametrize("columns", [80, 200])
def test_results_tables_fit_the_terminal(columns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`fleet results`: its two tables fit 80 and 200 columns, host names and index values
    whole (the explanations under them are prose)."""
    docs = [make_run("web-frontend-01.example.com", "web,eu-west", HVM, 1.00),
            *(make_run(f"w{i}", "web", HVM, 1 + i / 100) for i in range(2, 5)),
            make_run("w5", "web", PV, 1.0, virt="xen")]
    monkeypatch.setenv("COLUMNS", str(columns))
    t = table_for_documents(docs)
    out = render_table(t)
    tables = out.split("\n\n")[1:3]
    lines = "\n".join(tables).splitlines()
    assert len(lines) >= 2 + 5 + 1 + 3 and max(map(len, lines)) <= columns
    words = "\n".join(tables).split()
    for r in t.rows:
        assert r.host in words and f"{r.score:.1f}*" in words  # partial: 7 of 12 tests
    if columns == 200:
        assert len(tables[0].splitlines()) == 1 + len(docs)  # one line per host


def test_near_identical_hosts_are_not_outliers_thanks_to_the_noise_floor() -> None:
    docs = [make_run(f"h{i}", "db", HVM, s) for i, s in enumerate([1.0, 1.0, 1.0, 0.995])]
    t = table_for_documents(docs)
    assert all(not r.outlier_in for r in t.rows)
    db = next(g for g in t.groups if g.name == "db")
    assert db.mad == pytest.approx(0.0)
    assert db.threshold == pytest.approx(db.median * 0.97)


def test_partial_index_is_flagged_and_hosts_without_results_are_listed() -> None:
    run = make_run("q1", "", {"dhry2reg": 100.0})
    row = row_for(run, "q1", [], None)
    assert row.partial and row.score == pytest.approx(100.0)
    from virtbench.report.fleet import HostRow

    t = build_table([row, HostRow(host="dead", groups=[], status="failed",
                                  reason="unreachable: Connection refused")],
                    {"q1": run}, fleet="f1", command=["run", "--quick"], copies=None)
    out = render_table(t)
    assert "100.0*" in out and "failed: unreachable: Connection refused" in out
    assert any("partial" in n for n in t.notes)


# ---- fleet views in compare / report -------------------------------------------------------


def _stored_fleet() -> tuple[str, list[RunResult]]:
    """Five hosts' runs in the store and the fleet state that names them (one PV-like)."""
    from virtbench.store import save_and_record

    fid = "20990102-000000-f1e2"
    spec = [("w1", "web", HVM, 1.0), ("w2", "web", HVM, 1.01), ("w3", "web", HVM, 0.99),
            ("d1", "db", HVM, 1.0), ("w4", "web", PV, 1.0)]
    runs = []
    hosts = {}
    for host, group, idx, scale in spec:
        r = make_run(host, group, idx, scale, virt="xen" if idx is PV else "kvm")
        r.labels["fleet"] = fid
        save_and_record(r)
        runs.append(r)
        hosts[host] = HostState(name=host, groups=[group], status="fetched", run_ids=[r.id])
    hosts["gone"] = HostState(name="gone", groups=["db"], status="failed",
                              reason="unreachable: Connection refused")
    FleetState(id=fid, command=["run", "--quick"], inventory="/i", hosts=hosts).save()
    return fid, runs


def test_fleet_ref_resolves_to_each_hosts_latest_run() -> None:
    from virtbench.cli.resolve import resolve_runs

    fid, runs = _stored_fleet()
    docs = resolve_runs([f"fleet:{fid}"])
    assert [d.id for d in docs] == [r.id for r in runs]
    assert [d.id for d in resolve_runs(["fleet:latest"])] == [r.id for r in runs]
    with pytest.raises(UsageError, match="no such fleet run"):
        resolve_runs(["fleet:nope"])


def test_fleet_results_compare_and_report_show_the_fleet_view(tmp_path: Path) -> None:
    from conftest import run_cli

    fid, _runs = _stored_fleet()
    out = run_cli("fleet", "results", fid, check=True).stdout
    assert "OUTLIER in group:web" in out and "gone" in out and "unreachable" in out
    assert "Kernel entry" in out or "kernel" in out.lower()
    data = json.loads(run_cli("fleet", "results", fid, "--json", check=True).stdout)
    rows = {r["host"]: r for r in data["hosts"]}
    assert rows["w4"]["outlier_in"] and not rows["w1"]["outlier_in"]
    assert rows["gone"]["status"] == "failed"

    comp = run_cli("compare", f"fleet:{fid}", check=True).stdout
    assert comp.startswith(f"fleet {fid}") and "OUTLIER in group:web" in comp
    assert "test-by-test comparison of 5 hosts" not in comp  # 5 <= FLEET_COLUMNS: shown
    cj = json.loads(run_cli("compare", f"fleet:{fid}", "--json", check=True).stdout)
    assert cj["fleet"]["fleet"] == fid and len(cj["fleet"]["hosts"]) == 5

    md = run_cli("report", f"fleet:{fid}", "--format", "markdown", check=True).stdout
    assert f"## Fleet {fid}" in md and "| w4 |" in md and "OUTLIER" in md
    html = tmp_path / "fleet.html"
    run_cli("report", f"fleet:{fid}", "-o", str(html), check=True)
    page = html.read_text()
    assert 'id="fleet"' in page and 'class="outlier"' in page and "w4" in page


def test_status_of_a_run_whose_controller_died_says_stopped_and_how_to_resume() -> None:
    import socket
    import subprocess

    from conftest import run_cli

    dead = subprocess.Popen(["true"])
    dead.wait()
    st = FleetState(id="20990103-000000-dead", command=["run"], inventory="/i",
                    status="running", controller={"pid": dead.pid, "host": socket.gethostname()},
                    hosts={"a": HostState(name="a", status="running", run_dir="/r", job_id="1"),
                           "b": HostState(name="b", status="fetched", run_ids=["x"])})
    st.save()
    assert not st.controller_alive()
    out = run_cli("fleet", "status", st.id, check=True).stdout
    assert "stopped" in out and f"virtbench fleet resume {st.id}" in out
    listing = run_cli("fleet", "status", check=True).stdout
    assert st.id in listing and "stopped" in listing
    data = json.loads(run_cli("fleet", "status", "--json", check=True).stdout)
    assert data[-1]["counts"]["running"] == 1 and data[-1]["status"] == "stopped"


def test_fleet_results_reads_the_store_given_by_db(tmp_path: Path) -> None:
    """`fleet results --db URL` (and `fleet_table(db_url=...)`) read the documents from that
    store: the table ignored the URL and looked in the default store, so every host showed
    without its result."""
    from conftest import run_cli
    from virtbench.fleet.views import fleet_table
    from virtbench.store import save_and_record

    url = f"sqlite:///{tmp_path / 'other.db'}"
    fid = "20990104-000000-db01"
    r = make_run("w1", "web", HVM, 1.0, virt="kvm")
    r.labels["fleet"] = fid
    save_and_record(r, output=None, db_url=url)
    st = FleetState(id=fid, command=["run"], inventory="/i",
                    hosts={"w1": HostState(name="w1", groups=["web"], status="fetched",
                                           run_ids=[r.id])})
    st.save()
    row = fleet_table(st, db_url=url).to_dict()["hosts"][0]
    assert row["host"] == "w1" and row["run_id"] == r.id and row["score"] is not None
    default = fleet_table(st).to_dict()["hosts"][0]  # not in the default store
    assert default["run_id"] is None and default["score"] is None
    data = json.loads(run_cli("fleet", "results", fid, "--json", "--db", url,
                              check=True).stdout)
    assert data["hosts"][0]["run_id"] == r.id


@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(),
                    reason="needs openssh-server (scripts/setup-dev.sh installs it)")
def test_a_killed_test_host_leaves_no_process_of_its_command(tmp_path: Path) -> None:
    """The testbed's kill_host (test_fleet_hosts kills a host mid-run with it): a shell that
    keeps starting children, as the detached shell starts the command, leaves none of them
    running. One scan-and-kill missed the children started after the scan (every time with
    this shell), and a later `fleet resume` then collected the "dead" host's command instead
    of running it again."""
    import signal
    import subprocess
    import time

    from virtbench.fleet.testbed import LocalFleet, pids_with_cmdline

    frag = f"{tmp_path}/run-1/"
    fleet = LocalFleet(tmp_path / "tb", 0, unreachable=1)
    shell = subprocess.Popen(
        ["/bin/sh", "-c", f": {frag}; while :; do /bin/sh -c ': {frag}; sleep 60' & "
                          "sleep 0.001; done"], start_new_session=True)
    try:
        wait_until = time.monotonic() + 60
        while len(pids_with_cmdline(frag)) < 3 and time.monotonic() < wait_until:
            time.sleep(0.01)
        killed = fleet.kill_host("h1", remote_fragment=frag)
        assert shell.pid in killed
        assert pids_with_cmdline(frag) == []
    finally:
        for pid in pids_with_cmdline(frag):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shell.wait()
        fleet.close()
