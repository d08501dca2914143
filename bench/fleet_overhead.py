"""Controller overhead of ``virtbench fleet`` for N simulated hosts (figures, not pass/fail).

Each host is a real sshd on a loopback port (``virtbench.fleet.testbed``); the fleet runs
``detect`` on all of them, at each ``--forks`` value. Printed per forks value:

- wall time of the fleet run, and the part beyond the command itself (the median wall time
  of ``virtbench detect --json`` run alone, measured here first);
- controller CPU (the fleet process and everything it waited for: ansible-playbook, its
  workers, ssh clients) in total and per host;
- controller peak memory (sum of PSS over its process tree, sampled every 0.2 s: Ansible's
  forked workers share most pages with their parent) in total and per host;
- the time of each Ansible phase (preflight, launch, poll rounds, collect).

The bundle is shipped once (host h1) and the other hosts' bundle caches are links to its
cache, so the figures are the steady state of a fleet whose targets already have the bundle
(what every fleet run after the first one sees; the first run on one host is printed too).
The simulated hosts share this machine's CPUs with the controller, so wall times include
their own work (sshd, Ansible's remote Python, detect itself) on the same cores: on a real
fleet, that work is on the targets.

Usage: python bench/fleet_overhead.py [--hosts 100] [--forks 10 50] [--poll-interval 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path.insert(0, str(SRC))

from virtbench.fleet.testbed import LocalFleet  # noqa: E402


def _pss(pid: int) -> int | None:
    """Proportional set size (bytes): shared pages (Ansible's forked workers share most of
    theirs with their parent) counted once overall, not once per process."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def tree_rss(pid: int) -> int:
    """Sum of PSS (RSS where PSS is unreadable), in bytes, of ``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
        except OSError:
            continue
        p = int(entry.name)
        children.setdefault(int(fields[1]), []).append(p)
        rss[p] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        pss = _pss(p)
        total += pss if pss is not None else rss.get(p, 0)
        todo.extend(children.get(p, []))
    return total


def mux_cpu(control_dir: Path) -> dict[int, float]:
    """CPU seconds (user + system) of each live SSH connection master (ControlPersist) whose
    control socket is in ``control_dir``: they detach from the controller, so the controller's
    own rusage misses their work (encryption, the session traffic)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if str(control_dir) not in cmd:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def stop_muxes(control_dir: Path) -> None:
    """Close the SSH masters this benchmark started (by their control sockets)."""
    for sock in control_dir.glob("*"):
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                       capture_output=True, check=False, timeout=30)


def run_fleet(args: list[str], env: dict[str, str]) -> tuple[float, float, int, int, str]:
    """(wall s, controller CPU s, peak tree RSS bytes, exit status, stdout)."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "virtbench", "fleet", "run", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    peak = 0
    assert proc.stdout is not None
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.2)
    wall = time.monotonic() - t0
    out = proc.stdout.read()
    # the process is reaped by poll(); its rusage (with everything it waited for) is the
    # difference of our RUSAGE_CHILDREN before/after, taken by the caller
    return wall, 0.0, peak, proc.returncode, out


def phases(fleet_dir: Path) -> list[tuple[str, float]]:
    out = []
    for art in sorted((fleet_dir / "runner" / "artifacts").glob("*")):
        stamps = []
        for f in (art / "job_events").glob("*.json"):
            try:
                ev = json.loads(f.read_text())
                stamps.append(datetime.fromisoformat(ev["created"].replace("Z", "+00:00")))
            except (OSError, ValueError, KeyError):
                continue
        if stamps:
            out.append((art.name.split("-", 1)[1], (max(stamps) - min(stamps)).total_seconds()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--forks", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--poll-interval", type=float, default=5.0)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vbfb-"))
    try:
        return _bench(a, work)
    finally:
        if (work / "cp").is_dir():
            stop_muxes(work / "cp")
        shutil.rmtree(work, ignore_errors=True)


def _bench(a: argparse.Namespace, work: Path) -> int:
    control = work / "cp"
    control.mkdir()
    env = dict(os.environ, PYTHONPATH=str(SRC), XDG_DATA_HOME=str(work / "data"),
               XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME",
                                             str(Path.home() / ".cache")),
               ANSIBLE_SSH_CONTROL_PATH_DIR=str(control))
    # the command alone, for "beyond the command"
    solo = []
    for _ in range(3):
        t = time.monotonic()
        subprocess.run([sys.executable, "-m", "virtbench", "detect", "--json"], env=env,
                       capture_output=True, check=True)
        solo.append(time.monotonic() - t)
    t_cmd = statistics.median(solo)
    print(f"virtbench detect --json alone: {t_cmd:.2f} s (median of 3)")

    with LocalFleet(Path(f"/tmp/vbfb-{os.getpid()}"), a.hosts,
                    groups={"odd": [f"h{i}" for i in range(1, a.hosts + 1, 2)],
                            "even": [f"h{i}" for i in range(2, a.hosts + 1, 2)]}) as fleet:
        inv = str(fleet.inventory)
        common = ["-i", inv, "--deps", "ship", "--keep", "--poll-interval",
                  str(a.poll_interval), "--json"]
        wall, _, _, _rc, out = run_fleet([*common, "--limit", "h1", "--", "detect"], env)
        state = json.loads(out)
        h1 = state["hosts"]["h1"]
        if h1["status"] != "fetched":
            print(f"warm-up failed: {h1['reason']}")
            return 1
        print(f"first install + detect on 1 host: {wall:.1f} s")
        print(f"bytes shipped to h1: {h1.get('bytes_shipped')}")
        bundles = Path(h1["remote_dir"]).parent / "bundles"
        for i in range(2, a.hosts + 1):
            link = bundles / f"h{i}"
            if not link.exists():
                link.symlink_to(bundles / "h1")
            if os.getuid() == 0:
                os.lchown(link, fleet.uid, -1)

        print(f"\n{a.hosts} hosts (sshd on loopback), detect, poll interval "
              f"{a.poll_interval:g} s, bundles present")
        header = (f"{'forks':>5} {'fetched':>7} {'wall s':>7} {'beyond cmd':>10} "
                  f"{'ctl CPU s':>9} {'+ssh mux':>8} {'CPU/host':>8} {'peak MB':>8} "
                  f"{'MB/host':>7}")
        print(header)
        rows = []
        for forks in a.forks:
            before, mux0 = os.times(), mux_cpu(control)
            wall, _, peak, _rc, out = run_fleet([*common, "--forks", str(forks), "--",
                                                "detect"], env)
            after, mux1 = os.times(), mux_cpu(control)
            mux = sum(c - mux0.get(p, 0.0) for p, c in mux1.items())
            cpu = (after.children_user - before.children_user) + \
                (after.children_system - before.children_system) + mux
            st = json.loads(out)
            fetched = sum(1 for h in st["hosts"].values() if h["status"] == "fetched")
            shipped = sum(h.get("bytes_shipped", 0) for h in st["hosts"].values())
            n = len(st["hosts"])
            print(f"{forks:>5} {fetched:>4}/{n:<2} {wall:>7.1f} {wall - t_cmd:>10.1f} "
                  f"{cpu:>9.1f} {mux:>8.1f} {cpu / n:>8.2f} {peak / 1e6:>8.0f} "
                  f"{peak / 1e6 / n:>7.1f}  shipped {shipped} B")
            ph = phases(Path(env["XDG_DATA_HOME"]) / "virtbench" / "fleet" / st["id"])
            rows.append((forks, ph))
        for forks, ph in rows:
            polls = [d for name, d in ph if name == "poll"]
            parts = [f"{name} {d:.1f}s" for name, d in ph if name != "poll"]
            print(f"forks {forks}: phases " + ", ".join(parts)
                  + (f", {len(polls)} poll rounds of {statistics.median(polls):.1f}s (median)"
                     if polls else ""))
    print("\nnote: 'ctl CPU' is the fleet process and all it waited for (ansible-playbook, its "
          "workers, ssh clients) plus the ssh ControlPersist masters' CPU during the run "
          "('+ssh mux', already in 'ctl CPU'). The simulated "
          "hosts' own work (sshd, Ansible's remote Python, detect) shares the same CPUs and "
          "inflates wall time.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
