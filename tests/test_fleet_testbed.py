"""The namespace testbed (virtbench.fleet.testbed.NamespaceFleet, scripts/fleet_testbed.py):
hosts in network namespaces with their own address, home and system tree; each fault does
what it says; nothing is left behind, after close(), Ctrl-C or SIGKILL of the testbed.

Real parts: ``ip netns``, veth pairs on a bridge, sshd, ssh, cgroup CPU quotas, tmpfs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import ROOT, wait_for

from virtbench.fleet.testbed import (
    REGISTRY_DIR,
    Faults,
    NamespaceFleet,
    namespaces_available,
)

TREES = Path(__file__).parent / "data" / "detect"

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(),
                       reason="needs openssh-server (scripts/setup-dev.sh installs it)"),
    pytest.mark.skipif(os.getuid() != 0 or namespaces_available() is not None,
                       reason=f"needs network namespaces ({namespaces_available()})"),
]


def ssh(fleet: NamespaceFleet, host: str, command: str,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    h = fleet.host(host)
    return subprocess.run(
        ["ssh", "-i", str(fleet.key), "-o", f"UserKnownHostsFile={fleet.known_hosts}",
         "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
         "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=3",
         f"{fleet.user}@{h.address}", command],
        capture_output=True, text=True, timeout=timeout, check=False)


def leftovers(fleet: NamespaceFleet) -> list[str]:
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    found += [ln.split()[0] for ln in netns.splitlines() if ln.startswith(fleet.prefix)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found += [ln.split(":")[1].strip() for ln in links.splitlines()
              if fleet.token in ln.split(":")[1]]
    found += [str(p) for p in Path("/sys/fs/cgroup/cpu").glob(f"{fleet.prefix}*")]
    for p in (fleet.base, fleet.registry):
        if p.exists():
            found.append(str(p))
    if subprocess.run(["id", fleet.user], capture_output=True).returncode == 0:
        found.append(f"user {fleet.user}")
    return found


@pytest.fixture(scope="module")
def fleet() -> Iterator[NamespaceFleet]:
    trees = [TREES / "kvm-virtio", TREES / "aws-nitro", TREES / "hyper-v"]
    f = NamespaceFleet(Path(f"/tmp/vbtt-{os.getpid()}"), 6, roots=trees,
                       faults=Faults(dead=1, dying=1, slow=1, full=1, die_delay=0.5,
                                     slow_cpu=0.03))
    with f:
        yield f
    assert leftovers(f) == []


def by_fault(fleet: NamespaceFleet, fault: str | None) -> list[str]:
    return [h.name for h in fleet.hosts if h.fault == fault]


def test_each_host_has_its_own_address_home_and_tree(fleet: NamespaceFleet) -> None:
    healthy = by_fault(fleet, None)
    assert len(healthy) == 2 and len({h.address for h in fleet.hosts}) == 6
    a, b = healthy
    r = ssh(fleet, a, f"echo mine > $HOME/who; ls {fleet.root_mount}; ip -4 -o addr show eth0")
    assert r.returncode == 0, r.stderr
    assert "proc" in r.stdout.split() and fleet.host(a).address in r.stdout
    rb = ssh(fleet, b, "cat $HOME/who 2>&1; echo; cat " + str(fleet.root_mount / "README.md"))
    assert "No such file" in rb.stdout  # b has its own home
    tree_b = fleet.host(b).root
    assert tree_b is not None and (tree_b / "README.md").read_text() in rb.stdout
    assert fleet.host(a).root != tree_b


def test_dead_host_has_no_route(fleet: NamespaceFleet) -> None:
    (dead,) = by_fault(fleet, "dead")
    r = ssh(fleet, dead, "true")
    assert r.returncode == 255 and "No route to host" in r.stderr, r.stderr


def test_full_host_cannot_write(fleet: NamespaceFleet) -> None:
    (full,) = by_fault(fleet, "full")
    r = ssh(fleet, full, "mkdir -p $HOME/d && head -c 65536 /dev/zero > $HOME/d/f")
    assert r.returncode != 0 and "No space left on device" in r.stderr, r.stderr
    # the filler is not the user's to remove
    r = ssh(fleet, full, "rm -rf $HOME/.full 2>&1; df -k $HOME | tail -n 1")
    assert r.stdout.split()[-2] == "100%", r.stdout


def _cpu_cgroup(proc_self_cgroup: list[str]) -> str:
    """The cgroup of the cpu controller in /proc/self/cgroup lines (v1, else unified)."""
    unified = ""
    for line in proc_self_cgroup:
        hid, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return path
        if hid == "0" and not controllers:
            unified = path
    return unified


def _nr_throttled(fleet: NamespaceFleet, host: str) -> int:
    """How many periods the kernel throttled the host's cgroup so far (its cpu.stat)."""
    for cg in (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")):
        stat = cg / f"{fleet.prefix}-{host}" / "cpu.stat"
        if stat.exists():
            fields = dict(line.split() for line in stat.read_text().splitlines())
            return int(fields["nr_throttled"])
    raise AssertionError(f"no cgroup with a CPU quota for {host}")


def test_slow_host_answers_slowly(fleet: NamespaceFleet) -> None:
    """Every process of the slow host gets a few % of a CPU (a cgroup CPU quota): a shell
    loop there, its CPU time and wall time taken on the host itself, runs at no more than
    about that share of a CPU, and the kernel throttled it; a healthy host has no quota.
    (A share, not the two hosts' times compared: on a loaded machine the load slows the
    healthy host as much as the quota does the slow one; load can only lower the share.)"""
    (slow,) = by_fault(fleet, "slow")
    healthy = by_fault(fleet, None)[0]
    # the shell's own CPU time (ns, /proc/PID/schedstat) within the wall-clock window
    work = ("a=$(date +%s%N); read c0 _x < /proc/$$/schedstat; i=0; "
            "while [ $i -lt 40000 ]; do i=$((i+1)); done; "
            "read c1 _x < /proc/$$/schedstat; b=$(date +%s%N); "
            "echo $((c1 - c0)) $((b - a)); cat /proc/self/cgroup")
    share, group, wall = {}, {}, {}
    throttled = _nr_throttled(fleet, slow)
    for host in (slow, healthy):
        t = time.monotonic()
        r = ssh(fleet, host, work)
        wall[host] = time.monotonic() - t
        assert r.returncode == 0, r.stderr
        first, *cgroups = r.stdout.splitlines()
        cpu_ns, wall_ns = (int(x) for x in first.split())
        assert cpu_ns > 0 and wall_ns > 0, r.stdout
        share[host] = cpu_ns / wall_ns
        group[host] = _cpu_cgroup(cgroups)
        if host == slow:
            throttled = _nr_throttled(fleet, slow) - throttled
    assert group[slow] == f"/{fleet.prefix}-{slow}", group
    assert not group[healthy].startswith(f"/{fleet.prefix}"), group
    # unthrottled: about 100 % on an idle machine, 27-37 % at a load average of 13 here
    assert share[slow] <= 2 * fleet.faults.slow_cpu, share
    assert throttled > 0  # the quota held it back (its loop wanted more)
    assert wall[slow] > fleet.faults.slow_login  # and each session starts late
    # sftp works through the slow login (Ansible copies files with it)
    r = subprocess.run(
        ["sftp", "-b", "-", "-i", str(fleet.key), "-o", f"UserKnownHostsFile={fleet.known_hosts}",
         f"{fleet.user}@{fleet.host(slow).address}"], input="pwd\n", capture_output=True,
        text=True, timeout=60, check=False)
    assert r.returncode == 0 and "Remote working directory" in r.stdout, r.stderr


def test_dying_host_dies_once_its_command_runs(fleet: NamespaceFleet) -> None:
    (dying,) = by_fault(fleet, "dying")
    r = ssh(fleet, dying, "mkdir -p $HOME/.cache/virtbench-fleet/x/run-1 && "
            "echo $$ > $HOME/.cache/virtbench-fleet/x/run-1/pid && sleep 30 && echo survived",
            timeout=60)
    assert "survived" not in r.stdout and r.returncode != 0
    # the testbed's watcher thread says so once the kill is done (the ssh client above only
    # noticed a dead link by its keepalives; the event may still be on its way)
    wait_for(lambda: any(dying in msg and "died" in msg for _t, msg in fleet.events),
             lambda: f"{dying} to be reported dead: {fleet.events}", timeout=60)
    assert subprocess.run(["ip", "netns", "pids", fleet.netns(fleet.host(dying))],
                          capture_output=True, text=True).stdout.strip() == ""
    err = ssh(fleet, dying, "true").stderr
    assert "No route to host" in err or "timed out" in err, err  # ARP entry gone or not


def _script(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "fleet_testbed.py"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def _wait_up(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "hosts up" in line:
            return "".join(lines)
    raise AssertionError("testbed did not come up:\n" + "".join(lines))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_the_testbed_command_leaves_nothing_behind(sig: signal.Signals,
                                                   tmp_path: Path) -> None:
    """Ctrl-C: the testbed removes everything itself (exit 130); SIGKILL: its reaper does."""
    base = tmp_path / "tb"
    before = set(REGISTRY_DIR.glob("*.json")) if REGISTRY_DIR.exists() else set()
    proc = _script("--hosts", "3", "--dead", "1", "--dying", "0", "--slow", "1", "--full",
                   "1", "--base", str(base))
    try:
        _signal_and_check(proc, sig, base, before)
    finally:
        if proc.poll() is None:  # the test failed: the testbed must not outlive it
            proc.kill()
            proc.communicate()


def _registries_of(pid: int, before: set[Path]) -> list[Path]:
    """The registry files made since ``before`` by the testbed of process ``pid`` (another
    test session's testbed may have come or gone meanwhile)."""
    found = []
    for path in set(REGISTRY_DIR.glob("*.json")) - before:
        try:
            if json.loads(path.read_text()).get("pid") == pid:
                found.append(path)
        except (OSError, ValueError):
            continue
    return found


def _signal_and_check(proc: subprocess.Popen[str], sig: signal.Signals, base: Path,
                      before: set[Path]) -> None:
    err = _wait_up(proc)
    assert "3 hosts up" in err and "1 dead" in err and "1 full" in err
    inventory = (base / "inventory.ini").read_text()
    assert inventory.count("ansible_host=10.213.") == 3
    (registry,) = _registries_of(proc.pid, before)
    token = registry.stem
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    rc = proc.returncode
    if sig == signal.SIGINT:
        assert "stopped; removed" in err, err
    assert rc == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    deadline = time.monotonic() + 30
    while registry.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not registry.exists()
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert token not in netns and token not in links
    assert not list(Path("/sys/fs/cgroup/cpu").glob(f"vbtb{token}*"))
    assert not base.exists()
