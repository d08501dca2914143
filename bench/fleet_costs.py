"""Where a fleet controller's CPU goes: what one Ansible operation costs per host.

On the namespace testbed (``virtbench.fleet.testbed.NamespaceFleet``, every host healthy),
each line runs one small playbook with ``ansible-playbook`` in virtbench's Ansible
environment (``virtbench.fleet.ansible.ansible_env``: the settings a fleet run uses) and
prints the controller CPU seconds it took (ansible-playbook, its workers, the ssh clients
and the ssh ``ControlPersist`` masters, which this script adopts as subreaper and stops after
each line), in total and per host:

- ``start``: an empty play (Ansible's start-up, the inventory);
- ``raw, new connections``: one ``raw`` task (``true``) per host, each host's first SSH
  connection of the run (the key exchange is in it), with OpenSSH's default key exchange and
  with ``--kex`` (default ``curve25519-sha256``);
- ``+2 raw``: two more ``raw`` tasks on the open connections; ``+2 skipped``: two tasks
  whose ``when`` is false;
- ``copy`` and ``script``: a file of ``--size`` MB sent to each host by the ``copy`` module
  or by a ``script`` task whose executable moves it into place (what a fleet run did with
  the bundle), after a ``raw`` task that opens the connection;
- ``ssh on the master``: the same file sent by a plain ssh client per host on the
  connection that ``raw`` task left open (what a fleet run does with the bundle now:
  ``Engine.ship_direct``; ``--forks`` clients at once), to ``cat > FILE``.

The difference between two lines is what the extra operation costs. Needs root (namespaces).
The hosts' own work (sshd, the shell) shares this machine's CPUs, so wall times depend on the
load; CPU seconds are the comparable figure.

Usage: python bench/fleet_costs.py [--hosts 100] [--forks 10] [--size 3] [--kex ALGORITHMS]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_scale import _cpu_of, _prepare, _reap_orphans  # noqa: E402

from virtbench.fleet.ansible import (  # noqa: E402
    ansible_bin,
    ansible_env,
    control_dir,
    control_name,
    control_path_var,
)
from virtbench.fleet.testbed import NamespaceFleet  # noqa: E402

RAW = """    - name: t{i}
      raw: "true"
      changed_when: false
"""
SKIPPED = """    - name: s{i}
      raw: "true"
      when: false
"""
COPY = """    - name: copy
      copy:
        src: {src}
        dest: "~/vb-costs-copy"
        mode: "0600"
"""
SCRIPT = """    - name: script
      script:
        cmd: {src}
        executable: "/bin/sh -c 'mv \\\"$0\\\" \\\"$HOME/vb-costs-script\\\"'"
"""


def play(tasks: str) -> str:
    return f"- hosts: all\n  gather_facts: false\n  tasks:\n{tasks or '    []'}\n"


def measure(work: Path, name: str, tasks: str, fleet: NamespaceFleet, forks: int,
            extra_env: dict[str, str], after: Callable[[], None] | None = None
            ) -> tuple[float, float]:
    """(wall s, CPU s) of one ansible-playbook run, then of ``after()`` (its children), with
    the ssh masters they left."""
    pb = work / f"{name}.yml"
    pb.write_text(play(tasks))
    # each host's master socket named as a fleet run names it
    extra = work / f"{name}.json"
    extra.write_text(json.dumps(control_path_var([h.name for h in fleet.hosts])))
    # the interpreter named, as a fleet run named it for its copy module (no discovery)
    env = {**os.environ, **ansible_env(persist=60),
           "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3", **extra_env}
    t0 = time.monotonic()
    proc = subprocess.Popen([ansible_bin("ansible-playbook"), "-i", str(fleet.inventory), "-f",
                             str(forks), "-e", f"@{extra}", str(pb)],
                            stdout=subprocess.DEVNULL, env=env)
    _pid, status, ru = os.wait4(proc.pid, 0)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if after is not None and os.waitstatus_to_exitcode(status) == 0:
        after()
    then = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.monotonic() - t0
    cpu = _cpu_of(ru) + _cpu_of(then) - _cpu_of(before) + _reap_orphans()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"fleet_costs: {name}: ansible-playbook failed")
    return wall, cpu


def ssh_on_masters(hosts: list[str], blob: Path, forks: int) -> None:
    """Send ``blob`` to every host with an ssh client on its open master (as
    ``Engine.ship_direct`` does), ``forks`` at once."""
    cp = control_dir()
    assert cp is not None

    def one(h: str) -> int:
        with open(blob, "rb") as f:
            return subprocess.run(
                ["ssh", "-F", "/dev/null", "-T", "-o", "BatchMode=yes", "-o",
                 "ControlMaster=no", "-o", f"ControlPath={cp / control_name(h)}", "-o",
                 "ProxyCommand=false", "vb-fleet-master", 'cat > "$HOME/vb-costs-ssh"'],
                stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                check=False).returncode

    with ThreadPoolExecutor(max_workers=forks) as pool:
        failed = sum(rc != 0 for rc in pool.map(one, hosts))
    if failed:
        raise SystemExit(f"fleet_costs: ssh on the master failed on {failed} host(s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--forks", type=int, default=10)
    ap.add_argument("--size", type=float, default=3.0, help="MB sent by copy and script")
    ap.add_argument("--kex", default="curve25519-sha256",
                    help="the other key exchange measured (default curve25519-sha256)")
    a = ap.parse_args()
    work = _prepare("fleet_costs", "vbfc-")
    if work is None:
        return 2
    os.chmod(work, 0o755)
    try:
        blob = work / "blob.bin"
        blob.write_bytes(os.urandom(int(a.size * 1e6)))
        with NamespaceFleet(work / "tb", a.hosts) as fleet:
            kex = {"ANSIBLE_SSH_EXTRA_ARGS": "-o ServerAliveInterval=5 "
                   f"-o ServerAliveCountMax=3 -o KexAlgorithms={a.kex}"}
            lines = [
                ("start", "", {}),
                ("raw, new connections", RAW.format(i=1), {}),
                (f"raw, new connections, {a.kex}", RAW.format(i=1), kex),
                ("raw +2 raw", "".join(RAW.format(i=i) for i in range(3)), {}),
                ("raw +2 skipped", RAW.format(i=1) + SKIPPED.format(i=1)
                 + SKIPPED.format(i=2), {}),
                (f"raw + copy {a.size:g} MB", RAW.format(i=1) + COPY.format(src=blob), {}),
                (f"raw + script {a.size:g} MB", RAW.format(i=1) + SCRIPT.format(src=blob), {}),
            ]
            names = [h.name for h in fleet.hosts]
            ship: tuple[str, str, dict[str, str], Callable[[], None] | None] = (
                f"raw + ssh on the master {a.size:g} MB", RAW.format(i=1), {},
                lambda: ssh_on_masters(names, blob, a.forks))
            print(f"{a.hosts} hosts, forks {a.forks}, load average {os.getloadavg()[0]:.1f}")
            print(f"{'playbook':<40} {'wall s':>7} {'CPU s':>7} {'CPU ms/host':>11} {'load':>5}")
            runs: list[tuple[str, str, dict[str, str], Callable[[], None] | None]] = [
                (*line, None) for line in lines]
            for i, (name, tasks, extra, after) in enumerate([*runs, ship]):
                wall, cpu = measure(work, f"p{i}", tasks, fleet, a.forks, extra, after)
                print(f"{name:<40} {wall:>7.1f} {cpu:>7.2f} {cpu / a.hosts * 1000:>11.0f} "
                      f"{os.getloadavg()[0]:>5.1f}", flush=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
