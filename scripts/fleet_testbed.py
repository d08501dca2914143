#!/usr/bin/env python3
"""A fleet of real SSH hosts on this machine, up with one command, gone when it ends.

Each host is an ``sshd`` in its own network namespace with its own address (a veth pair on a
private bridge), its own home directory and its own captured system tree from
``tests/data/detect`` (mounted at the same path on every host: ``$VB_TESTBED_ROOT``, so
``virtbench detect --root $VB_TESTBED_ROOT`` reports a different machine on each host).
Faults: hosts that are dead from the start, that die while their fleet command runs, that
answer slowly (each SSH session starts 2 s late, a quarter of one CPU) and whose disk is
full (a full tmpfs as their home).

    sudo .venv/bin/python scripts/fleet_testbed.py --hosts 100            # up until Ctrl-C
    sudo .venv/bin/python scripts/fleet_testbed.py --hosts 100 -- \\
        sh -c 'virtbench fleet run -i "$VB_TESTBED_INVENTORY" -- detect --root "$VB_TESTBED_ROOT"'
    sudo .venv/bin/python scripts/fleet_testbed.py --clean    # leftovers of a killed testbed

With a command after ``--``, the testbed starts, runs it (with ``VB_TESTBED_INVENTORY``,
``VB_TESTBED_ROOT``, ``VB_TESTBED_FAULTS`` and, with ``--postgres``, ``VIRTBENCH_DB`` in its
environment), and stops; the exit status is the command's. Without one it stays up until
Ctrl-C or SIGTERM and prints where its inventory is. Nothing is left behind: namespaces,
bridge, cgroups, the test user, the directory and the PostgreSQL server are removed on exit,
on Ctrl-C and on SIGTERM; after SIGKILL, a reaper process (its own session) removes them.

Needs root. Where network namespaces cannot be made, it falls back to sshd on loopback ports
(dead hosts only: the other faults need namespaces) and says so. See docs/fleet.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from virtbench.errors import EnvironmentUnsupported  # noqa: E402
from virtbench.fleet.testbed import (  # noqa: E402
    Faults,
    LocalFleet,
    NamespaceFleet,
    clean_stale,
    namespaces_available,
)

TREES = ROOT / "tests" / "data" / "detect"


class Stop(Exception):
    """SIGTERM or SIGHUP: stop the testbed."""


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise Stop(signal.Signals(signum).name)


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return found[-1] if found else shutil.which(name)


class Postgres:
    """A throw-away PostgreSQL (initdb in a temp dir, a loopback port), as in
    docs/database.md."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not self.initdb or not self.pg_ctl:
            raise EnvironmentUnsupported("--postgres needs PostgreSQL (apt-get install "
                                         "postgresql)")
        self.user = "postgres" if os.getuid() == 0 else None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql+psycopg://vb@127.0.0.1:{self.port}/postgres"

    def _as(self, cmd: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *cmd] if self.user else cmd

    def start(self) -> None:
        assert self.initdb and self.pg_ctl
        self.base.mkdir(parents=True)
        if self.user:
            pw = pwd.getpwnam(self.user)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        env = dict(os.environ, LC_ALL="C", LANG="C")
        subprocess.run(self._as([self.initdb, "-D", str(self.base / "data"), "-A", "trust",
                                 "-U", "vb", "-E", "UTF8", "--no-sync", "--locale=C"]),
                       check=True, capture_output=True, env=env, cwd=self.base)
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} "
                "-c fsync=off -c synchronous_commit=off -c max_connections=40")
        subprocess.run(self._as([self.pg_ctl, "-D", str(self.base / "data"), "-l",
                                 str(self.base / "log"), "-o", opts, "-w", "start"]),
                       check=True, capture_output=True, env=env, cwd=self.base)

    def stop(self) -> None:
        assert self.pg_ctl
        if (self.base / "data" / "postmaster.pid").exists():
            subprocess.run(self._as([self.pg_ctl, "-D", str(self.base / "data"), "-m",
                                     "immediate", "-w", "stop"]),
                           capture_output=True, check=False, cwd="/")
        shutil.rmtree(self.base, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(
        description="start a fleet of sshd hosts in network namespaces (with faults), run a "
        "command against it or wait for Ctrl-C, then remove everything",
        epilog="example: %(prog)s --hosts 100 -- sh -c 'virtbench fleet run -i "
        "\"$VB_TESTBED_INVENTORY\" -- detect --root \"$VB_TESTBED_ROOT\"'")
    ap.add_argument("--hosts", type=int, default=100, help="hosts in the inventory "
                    "(default 100)")
    ap.add_argument("--dead", type=int, default=10, help="dead from the start (default 10)")
    ap.add_argument("--dying", type=int, default=5,
                    help="die once their fleet command runs (default 5)")
    ap.add_argument("--slow", type=int, default=5, help="slow to answer (default 5)")
    ap.add_argument("--full", type=int, default=2, help="disk full (default 2)")
    ap.add_argument("--no-faults", action="store_true", help="every host healthy")
    ap.add_argument("--die-delay", type=float, default=1.0,
                    help="seconds a dying host's command runs before it dies (default 1)")
    ap.add_argument("--slow-cpu", type=float, default=0.25,
                    help="share of one CPU a slow host gets (default 0.25)")
    ap.add_argument("--slow-login", type=float, default=2.0,
                    help="seconds each SSH session of a slow host starts late (default 2)")
    ap.add_argument("--postgres", action="store_true",
                    help="also start a throw-away PostgreSQL and export VIRTBENCH_DB")
    ap.add_argument("--base", help="the testbed's directory (default /tmp/vbtb-PID)")
    ap.add_argument("--clean", action="store_true",
                    help="remove the leftovers of testbeds whose process was killed, and exit")
    ap.add_argument("command", nargs=argparse.REMAINDER,
                    help="after --: a command to run against the testbed")
    a = ap.parse_args()
    if a.clean:
        gone = clean_stale()
        print(f"removed {len(gone)} stale testbed(s)" + (f": {', '.join(gone)}" if gone else ""))
        return 0
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if os.getuid() != 0:
        print("fleet_testbed: needs root (network namespaces, a test user)", file=sys.stderr)
        return 2
    if not 1 <= a.hosts <= 250:
        print("fleet_testbed: --hosts must be between 1 and 250", file=sys.stderr)
        return 2
    faults = Faults() if a.no_faults else Faults(
        dead=a.dead, dying=a.dying, slow=a.slow, full=a.full, die_delay=a.die_delay,
        slow_cpu=a.slow_cpu, slow_login=a.slow_login)
    if faults.total > a.hosts:
        print(f"fleet_testbed: {faults.total} faulty hosts asked for, only {a.hosts} hosts",
              file=sys.stderr)
        return 2
    base = Path(a.base or f"/tmp/vbtb-{os.getpid()}")
    if base.exists():
        print(f"fleet_testbed: {base} exists", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)

    def event(msg: str) -> None:
        print(f"fleet_testbed: {msg}", file=sys.stderr, flush=True)

    fleet: LocalFleet
    trees = sorted(p for p in TREES.iterdir() if p.is_dir()) if TREES.is_dir() else []
    why = namespaces_available()
    if why is None:
        fleet = NamespaceFleet(base, a.hosts, faults=faults, roots=trees or None,
                               on_event=event)
        root = str(fleet.root_mount)
    else:
        event(f"no network namespaces here ({why}): falling back to sshd on loopback ports "
              f"with {faults.dead} unreachable host(s); dying, slow and full hosts and the "
              "per-host system trees need namespaces")
        alive = a.hosts - faults.dead
        fleet = LocalFleet(base, alive, unreachable=faults.dead)
        root = ""
    pg: Postgres | None = None
    t0 = time.monotonic()
    try:
        fleet.start()
        env = dict(os.environ, VB_TESTBED_INVENTORY=str(fleet.inventory),
                   VB_TESTBED_ROOT=root, VB_TESTBED_FAULTS=str(base / "faults.json"))
        if not (base / "faults.json").exists():
            (base / "faults.json").write_text(json.dumps(
                {h.name: "dead" for h in fleet.hosts if not h.reachable}) + "\n")
        if a.postgres:
            pg = Postgres(base / "pg")
            pg.start()
            env["VIRTBENCH_DB"] = pg.url
        counts = {k: sum(1 for h in fleet.hosts if getattr(h, "fault", None) == k)
                  for k in ("dead", "dying", "slow", "full")}
        if why is not None:
            counts["dead"] = faults.dead
        event(f"{len(fleet.hosts)} hosts up in {time.monotonic() - t0:.1f} s "
              f"({', '.join(f'{v} {k}' for k, v in counts.items())}); "
              f"inventory {fleet.inventory}" + (f", system trees at {root}" if root else "")
              + (f", PostgreSQL at {pg.url}" if pg else ""))
        (base / "env.sh").write_text("".join(
            f"export {k}={v}\n" for k, v in env.items()
            if k.startswith("VB_TESTBED_") or k == "VIRTBENCH_DB"))
        event(f"faults: {base / 'faults.json'}; environment: . {base / 'env.sh'}")
        if not command:
            event("up; Ctrl-C stops it")
            while True:
                time.sleep(3600)
        proc = subprocess.Popen(command, env=env)
        try:
            return proc.wait()
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
    except (KeyboardInterrupt, Stop):
        event("stopping")
        return 130
    except (EnvironmentUnsupported, RuntimeError, subprocess.CalledProcessError) as exc:
        event(f"cannot start: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean up
        if pg is not None:
            pg.stop()
        fleet.close()
        event(f"stopped; removed {base}")


if __name__ == "__main__":
    raise SystemExit(main())
