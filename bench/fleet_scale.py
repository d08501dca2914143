"""``virtbench fleet`` at 10, 50 and 100 hosts, with faults (figures, not pass/fail).

The hosts are the namespace testbed (``virtbench.fleet.testbed.NamespaceFleet``, as
``scripts/fleet_testbed.py`` starts it): one sshd per network namespace, each with its own
address, home and captured system tree (``tests/data/detect``); at the default rates 10% of
the hosts are dead from the start, 5% die while their command runs, 5% are slow (each SSH
session starts 2 s late; a quarter of one CPU) and 2% have a full disk. For each size the
fleet runs the command twice (the second run finds the bundle cached on the targets) and
prints, per run:

- wall time of ``virtbench fleet run``;
- controller CPU seconds (the fleet process and everything it started: ansible-playbook, its
  workers, the ssh clients and their ControlPersist masters; this script is their subreaper,
  so the masters' CPU is counted when they are stopped at the end of the run), in total and
  per host;
- controller peak memory (sum of PSS over its process tree, sampled every 0.2 s) in total and
  per host;
- bytes shipped per host: what the controller sent to each live host, read from the host
  side of its veth pair (TX bytes: SSH, Ansible's modules, the bundle), median and maximum;
- the outcome: hosts fetched (and live hosts not fetched: results lost), and each faulty
  host's state with its reason;
- the load average (1 minute) when the run ended: wall times are only comparable at the same
  load, CPU seconds are.

``--kill-resume`` then SIGKILLs a controller once half the live hosts are running or done,
and times ``fleet resume``. Results go to the store ``VIRTBENCH_DB`` names (``--postgres``:
a throw-away PostgreSQL, as scripts/fleet_testbed.py starts it).

Usage: python bench/fleet_scale.py [--sizes 10 50 100] [--runs 2] [--kill-resume]
           [--postgres] [--kex ALGORITHMS] [-- COMMAND]   (default command: detect --root <tree>)
Needs root (namespaces). The simulated hosts share this machine's CPUs with the controller.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet_overhead import tree_rss  # noqa: E402
from fleet_testbed import TREES, Postgres  # noqa: E402

from virtbench.fleet.testbed import Faults, NamespaceFleet, namespaces_available  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36


def _subreaper() -> None:
    """Orphans of our children (ssh ControlPersist masters) become ours: their CPU time is
    counted in RUSAGE_CHILDREN once we reap them, and none outlives the benchmark."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _prepare(tool: str, prefix: str) -> Path | None:
    """What a fleet benchmark needs before its testbed: network namespaces (else one line on
    stderr and None), orphans reaped by us, SIGTERM cleaning up as Ctrl-C does, and its work
    directory."""
    why = namespaces_available()
    if why is not None:
        print(f"{tool}: needs network namespaces: {why}", file=sys.stderr)
        return None
    _subreaper()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return Path(tempfile.mkdtemp(prefix=prefix))


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, command name, state) from /proc/PID/stat (zombies too)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[1]), comm, fields[0]


def _cpu_of(ru: resource.struct_rusage) -> float:
    return ru.ru_utime + ru.ru_stime


def _reap_orphans() -> float:
    """Stop the ssh processes we adopted (the ControlPersist masters of the fleet's ssh
    clients) and reap them: their CPU seconds. Other adopted orphans that have exited (the
    targets' daemonized commands: the testbed's sshd are our children) are reaped and not
    counted: that is the targets' work."""
    me = os.getpid()
    masters, zombies = [], []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is None or st[0] != me:
            continue
        if st[1] == "ssh":
            masters.append(int(entry.name))
        elif st[2] == "Z":
            zombies.append(int(entry.name))
    for pid in masters:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    cpu = 0.0
    for pid in masters:
        with contextlib.suppress(ChildProcessError):
            cpu += _cpu_of(os.wait4(pid, 0)[2])
    for pid in zombies:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    return cpu


def _tx(fleet: NamespaceFleet) -> dict[str, int]:
    out = {}
    for h in fleet.hosts:
        p = Path(f"/sys/class/net/{fleet._veth(h)}/statistics/tx_bytes")
        try:
            out[h.name] = int(p.read_text())
        except (OSError, ValueError):
            out[h.name] = 0
    return out


def fleet_cmd(args: list[str], env: dict[str, str], kill_when: Any = None
              ) -> tuple[float, float, int, int, str]:
    """Run ``virtbench fleet ARGS``: (wall s, CPU s, peak PSS bytes, exit status, stdout).
    CPU: the fleet process and all it waited for (its rusage), plus the ssh masters it left.
    ``kill_when()``: SIGKILL the controller once it says so."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, open(env["VB_LOG"], "a") as log:
        proc = subprocess.Popen([sys.executable, "-m", "virtbench", "fleet", *args],
                                stdout=out, stderr=log, text=True, env=env)
        peak = 0
        try:
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                peak = max(peak, tree_rss(proc.pid))
                if kill_when is not None and kill_when():
                    proc.kill()
                time.sleep(0.2)
        except BaseException:
            # Ctrl-C or SIGTERM of the benchmark: the fleet command stops first (its own
            # SIGTERM handling stops Ansible), so it writes nothing into the work directory
            # removed after it
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
        cpu = _cpu_of(ru) + _reap_orphans()
        out.seek(0)
        return wall, cpu, peak, proc.returncode, out.read()


def outcome(fleet: NamespaceFleet, state: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(fetched, live hosts not fetched, one line per faulty or unfetched host)."""
    hosts = state["hosts"]
    fetched = sum(1 for h in hosts.values() if h["status"] == "fetched")
    lost = 0
    lines = []
    for h in fleet.hosts:
        s = hosts[h.name]
        if h.fault in (None, "slow") and s["status"] != "fetched":
            lost += 1
        if h.fault is not None or s["status"] != "fetched" or s.get("slow"):
            why = "; ".join(x for x in (s.get("reason"), s.get("slow")) if x)
            lines.append(f"  {h.name:<5} {h.fault or 'healthy':<7} {s['status']:<8} {why}")
    return fetched, lost, lines


def scaled(n: int, a: argparse.Namespace) -> Faults:
    if a.no_faults:
        return Faults()
    def count(rate: float) -> int:
        return math.ceil(n * rate - 1e-9)

    return Faults(dead=count(a.dead), dying=count(a.dying), slow=count(a.slow),
                  full=count(a.full), die_delay=a.die_delay)


def size_problem(n: int, a: argparse.Namespace) -> str | None:
    """Why the testbed cannot have ``n`` hosts with these fault rates (None: it can)."""
    if not 1 <= n <= 250:
        return f"--sizes {n}: the testbed has 1 to 250 hosts (one /24)"
    f = scaled(n, a)
    if f.total <= n:
        return None
    fits = next((m for m in range(n + 1, 251) if scaled(m, a).total <= m), None)
    return (f"--sizes {n}: {n} hosts cannot hold {f.total} faulty ones ({f.dead} dead, "
            f"{f.dying} dying, {f.slow} slow, {f.full} full: each rate rounds up to at least "
            f"one host); use --sizes {fits} or more, lower rates (--dead, --dying, --slow, "
            "--full) or --no-faults")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--runs", type=int, default=2, help="fleet runs per size (default 2)")
    ap.add_argument("--forks", type=int, default=None, help="fleet --forks (default: the "
                    "fleet's own)")
    ap.add_argument("--poll-interval", type=float, default=2.0)
    ap.add_argument("--fleet-args", default="--deps ship",
                    help="more fleet run options (default: --deps ship)")
    ap.add_argument("--dead", type=float, default=0.10)
    ap.add_argument("--dying", type=float, default=0.05)
    ap.add_argument("--slow", type=float, default=0.05)
    ap.add_argument("--full", type=float, default=0.02)
    ap.add_argument("--die-delay", type=float, default=1.0)
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--kill-resume", action="store_true",
                    help="at the largest size: SIGKILL a controller mid-run, then resume")
    ap.add_argument("--postgres", action="store_true", help="results into a throw-away "
                    "PostgreSQL (VIRTBENCH_DB)")
    ap.add_argument("--log", default=None, help="keep the controllers' stderr in this file")
    ap.add_argument("--kex", metavar="ALGORITHMS", default=None,
                    help="SSH key exchange for the controller's connections (ssh -o "
                         "KexAlgorithms=...; e.g. curve25519-sha256, the pre-OpenSSH-9.0 "
                         "default without the post-quantum part: docs/fleet.md)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    for n in a.sizes:
        why = size_problem(n, a)
        if why is not None:
            print(f"fleet_scale: {why}", file=sys.stderr)
            return 2
    work = _prepare("fleet_scale", "vbfs-")
    if work is None:
        return 2
    os.chmod(work, 0o755)
    pg = None
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), XDG_DATA_HOME=str(work / "data"),
                   XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME",
                                                 str(Path.home() / ".cache")),
                   VB_LOG=a.log or str(work / "controller.log"))
        if a.kex:
            # the keepalives virtbench sets when ssh_extra_args is not configured, plus the kex
            env["ANSIBLE_SSH_EXTRA_ARGS"] = ("-o ServerAliveInterval=5 -o ServerAliveCountMax=3 "
                                             f"-o KexAlgorithms={a.kex}")
        if a.postgres:
            pg = Postgres(work / "pg")
            pg.start()
            env["VIRTBENCH_DB"] = pg.url
        print(f"store: {'PostgreSQL ' + pg.url if pg else env.get('VIRTBENCH_DB', 'SQLite')}"
              f"; controller log: {env['VB_LOG']}; load average {os.getloadavg()[0]:.1f}")
        rc = 0
        for n in a.sizes:
            rc |= _size(n, a, env, work, kill=a.kill_resume and n == max(a.sizes))
        return rc
    finally:
        if pg is not None:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def _size(n: int, a: argparse.Namespace, env: dict[str, str], work: Path,
          kill: bool) -> int:
    trees = sorted(p for p in TREES.iterdir() if p.is_dir())
    faults = scaled(n, a)
    with NamespaceFleet(work / f"tb{n}", n, faults=faults, roots=trees) as fleet:
        command = a.command[1:] if a.command[:1] == ["--"] else a.command
        command = command or ["detect", "--root", str(fleet.root_mount)]
        common = ["run", "-i", str(fleet.inventory), "--poll-interval", str(a.poll_interval),
                  "--json", *a.fleet_args.split()]
        if a.forks:
            common += ["--forks", str(a.forks)]
        print(f"\n{n} hosts ({faults.dead} dead, {faults.dying} dying, {faults.slow} slow, "
              f"{faults.full} full): virtbench fleet {' '.join(common)} -- "
              f"{' '.join(command)}")
        print(f"{'run':>3} {'wall s':>7} {'ctl CPU s':>9} {'CPU/host':>8} {'peak MB':>8} "
              f"{'MB/host':>7} {'sent/host MB (median, max)':>27} {'fetched':>8} {'lost':>4} "
              f"{'load':>5}")
        live = [h.name for h in fleet.hosts if h.fault in (None, "slow")]
        state: dict[str, Any] = {}
        for run in range(1, a.runs + 1):
            tx0 = _tx(fleet)
            wall, cpu, peak, _rc, out = fleet_cmd([*common, "--", *command], env)
            tx1 = _tx(fleet)
            sent = sorted(tx1[h] - tx0[h] for h in live)
            state = json.loads(out)
            fetched, lost, lines = outcome(fleet, state)
            print(f"{run:>3} {wall:>7.1f} {cpu:>9.1f} {cpu / n:>8.2f} {peak / 1e6:>8.0f} "
                  f"{peak / 1e6 / n:>7.1f} {statistics.median(sent) / 1e6:>16.2f}, "
                  f"{sent[-1] / 1e6:>8.2f} {fetched:>5}/{n:<3} {lost:>4} "
                  f"{os.getloadavg()[0]:>5.1f}", flush=True)
            if run == 1 or lost:
                print("\n".join(lines))
            fleet.rearm()  # the dying hosts come back, to die again in the next run
        if kill:
            _kill_resume(fleet, common, command, env, live)
    return 0


def _kill_resume(fleet: NamespaceFleet, common: list[str], command: list[str],
                 env: dict[str, str], live: list[str]) -> None:
    root = Path(env["XDG_DATA_HOME"]) / "virtbench" / "fleet"
    before = {p.name for p in root.iterdir()} if root.exists() else set()
    healthy = [h.name for h in fleet.hosts if h.fault in (None, "slow")]

    def half_started() -> bool:
        new = [p for p in root.iterdir() if p.name not in before] if root.exists() else []
        if not new:
            return False
        try:
            st = json.loads((new[0] / "state.json").read_text())
        except (OSError, ValueError):
            return False
        started = sum(1 for h in healthy
                      if st["hosts"][h]["status"] in ("running", "fetching", "fetched"))
        return started >= len(healthy) // 2

    wall1, cpu1, _p, rc1, _out = fleet_cmd([*common, "--", *command], env,
                                           kill_when=half_started)
    run_id = next(p.name for p in root.iterdir() if p.name not in before)
    st = json.loads((root / run_id / "state.json").read_text())
    counts: dict[str, int] = {}
    for h in st["hosts"].values():
        counts[h["status"]] = counts.get(h["status"], 0) + 1
    print(f"\nkill + resume: controller SIGKILLed after {wall1:.1f} s (exit {rc1}); "
          f"state then: {counts}")
    wall2, cpu2, _p2, rc2, out = fleet_cmd(
        ["resume", run_id, "--json", "--poll-interval", common[common.index("--poll-interval")
                                                               + 1]], env)
    state = json.loads(out)
    fetched, lost, lines = outcome(fleet, state)
    twice = [h for h in healthy if len(state["hosts"][h]["run_ids"]) > 1]
    print(f"resume: {wall2:.1f} s, controller CPU {cpu1 + cpu2:.1f} s in all, exit {rc2}; "
          f"{fetched} fetched, {lost} live hosts lost, {len(twice)} imported twice")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
