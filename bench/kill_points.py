"""Kill virtbench at random moments, run the next command, and count what is left.

For every command below: one complete run first (its duration bounds the random moments),
then N trials per signal (SIGINT, SIGKILL): start the command in its own session with its own
temp and data directories, send the signal to virtbench after a random delay, wait for it,
run the next virtbench command (``virtbench runs``: the sweep on start cleans what a killed
run left), then count what is left:

* processes of the killed command's session, and QEMU processes started for the trial;
* entries in the trial's temp directory (work directories, build temp files);
* cgroup sessions of the killed process (``virtbench.<pid>.*``);
* changed sysctls (tune runs on a copy of the /proc/sys settings it changes: --sysctl-root);
* documents not in a final status (``running``).

Run from the project root (root for the container commands; QEMU and a kernel for the VM
ones, which are opt-in with --vm):

    .venv/bin/python bench/kill_points.py [--trials N] [--only NAME,...] [--vm]

The figures in docs/reliability.md come from this script (with the command line shown there).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
REPORT = ROOT / "tests" / "data" / "unixbench-6.0-2cpu.txt"
CGROUP_ROOT = Path("/sys/fs/cgroup")
FINAL = {"complete", "partial", "failed", "interrupted", "abandoned"}


@dataclass
class Command:
    name: str
    args: list[str]
    needs: str = ""  # "root", "vm"


@dataclass
class Tally:
    trials: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)

    def add(self, exit_: str, left: dict[str, int]) -> None:
        self.trials += 1
        self.exits[exit_] = self.exits.get(exit_, 0) + 1
        for k, v in left.items():
            self.left[k] = self.left.get(k, 0) + v


def commands(sysroot: str) -> list[Command]:
    tiny = ["--workload", "sysmix", "--iterations", "300"]
    return [
        Command("run", ["run", "--quick", "-c", "1", "dhry2reg", "pipe", "fstime"]),
        Command("io postmark", ["io", "postmark", "--files", "300", "--transactions", "8000"]),
        Command("io seqread", ["io", "seqread", "--size", "64m", "--repeat", "2"]),
        Command("consolidate process", ["consolidate", "--kind", "process", "--instances",
                                        "1,2", *tiny]),
        Command("consolidate container", ["consolidate", "--kind", "container",
                                          "--instances", "1,2", *tiny], "root"),
        Command("consolidate vm", ["consolidate", "--kind", "vm", "--instances", "1",
                                   "--accel", "tcg", *tiny], "vm"),
        Command("cap", ["cap", "--kind", "container", "--quota", "1,0.3", "--duration",
                        "0.5"], "root"),
        Command("tune", ["tune", "--sysctl-root", sysroot, "--set", "vm.dirty_ratio=40",
                         "--rounds", "2", "--", "io", "postmark", "--files", "100",
                         "--transactions", "2000"]),
        Command("migrate", ["migrate", "--bandwidth", "100M", "--dirty-rate", "2", "--wss",
                            "16", "--settle", "0.3", "--accel", "tcg"], "vm"),
        Command("import", ["import", str(REPORT), "--label", "k=v"]),
    ]


def _env(trial: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), TMPDIR=str(trial / "tmp"),
               XDG_DATA_HOME=str(trial / "data"))
    env.pop("VIRTBENCH_DB", None)
    return env


def _start(cmd: Command, trial: Path) -> subprocess.Popen[bytes]:
    for d in ("tmp", "data"):
        (trial / d).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "virtbench", *cmd.args], env=_env(trial),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, cwd=trial)


def _session_processes(sid: int, trial: Path) -> tuple[int, int]:
    """(processes still in the killed command's session, QEMU processes of the trial)."""
    procs = qemu = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text().rpartition(")")[2].split()
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat[3]) == sid and stat[0] != "Z":
            procs += 1
        if "qemu-system" in cmdline and str(trial) in cmdline:
            qemu += 1
    return procs, qemu


def _cgroups(pid: int) -> int:
    prefix = f"virtbench.{pid}."
    found = 0
    for top in (CGROUP_ROOT, *CGROUP_ROOT.glob("*")):
        try:
            found += sum(1 for p in top.iterdir() if p.name.startswith(prefix))
        except OSError:
            continue
    return found


def _running_docs(trial: Path) -> int:
    n = 0
    for p in (trial / "data" / "virtbench" / "results").glob("*.json"):
        try:
            n += json.loads(p.read_text()).get("status") not in FINAL
        except (OSError, ValueError):
            n += 1
    return n


def _leftovers(pid: int, trial: Path, sysroot: Path, sysorig: str) -> dict[str, int]:
    procs, qemu = _session_processes(pid, trial)
    return {
        "processes": procs,
        "qemu": qemu,
        "temp entries": len(list((trial / "tmp").iterdir())),
        "cgroups": _cgroups(pid),
        "sysctls": int((sysroot / "vm" / "dirty_ratio").read_text() != sysorig),
        "docs running": _running_docs(trial),
    }


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> str:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "hang"
    return "ok" if rc == 0 else f"exit {rc}" if rc > 0 else f"signal {-rc}"


def trial(cmd: Command, sig: int, delay: float, base: Path, sysroot: Path,
          sysorig: str) -> tuple[str, dict[str, int]]:
    t = Path(tempfile.mkdtemp(prefix="kp-", dir=base))
    proc = _start(cmd, t)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    exit_ = _wait(proc, 120)
    time.sleep(0.2)  # children that die with their parent (PDEATHSIG) get a moment
    subprocess.run([sys.executable, "-m", "virtbench", "runs"], env=_env(t),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   timeout=120)
    left = _leftovers(proc.pid, t, sysroot, sysorig)
    with_left = {k: v for k, v in left.items() if v}
    if with_left:
        print(f"  {cmd.name} {signal.Signals(sig).name} at {delay:.2f} s: {with_left}",
              file=sys.stderr)
    _cleanup(proc.pid, t)
    (sysroot / "vm" / "dirty_ratio").write_text(sysorig)
    return exit_, left


def _cleanup(pid: int, t: Path) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    shutil.rmtree(t, ignore_errors=True)


def _usable(cmd: Command, vm: bool) -> str:
    if cmd.needs == "root" and os.geteuid() != 0:
        return "needs root"
    if cmd.needs == "vm" and not vm:
        return "VM commands are opt-in (--vm)"
    return ""


def measure(cmd: Command, n: int, base: Path, sysroot: Path, sysorig: str) -> Tally | str:
    t = Path(tempfile.mkdtemp(prefix="kp-full-", dir=base))
    started = time.monotonic()
    proc = _start(cmd, t)
    if _wait(proc, 600) != "ok":
        _cleanup(proc.pid, t)
        return "the complete run failed"
    full = time.monotonic() - started
    _cleanup(proc.pid, t)
    tally = Tally()
    for sig in (signal.SIGINT, signal.SIGKILL):
        for _ in range(n):
            exit_, left = trial(cmd, sig, random.uniform(0, full), base, sysroot, sysorig)
            tally.add(exit_, left)
    return tally


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100, help="per signal and command (100)")
    ap.add_argument("--only", default="", help="comma-separated command names")
    ap.add_argument("--vm", action="store_true", help="include the VM commands (slow)")
    ap.add_argument("--seed", type=int, default=1)
    opts = ap.parse_args()
    random.seed(opts.seed)
    base = Path(tempfile.mkdtemp(prefix="virtbench-killpoints-"))
    sysroot = base / "sys"
    (sysroot / "vm").mkdir(parents=True)
    sysorig = "20\n"
    (sysroot / "vm" / "dirty_ratio").write_text(sysorig)
    wanted = {w.strip() for w in opts.only.split(",") if w.strip()}
    print(f"{'command':<22} {'trials':>6}  {'left after the next command':<60}  exits")
    try:
        for cmd in commands(str(sysroot)):
            if wanted and cmd.name not in wanted:
                continue
            why = _usable(cmd, opts.vm)
            result = why or measure(cmd, opts.trials, base, sysroot, sysorig)
            if isinstance(result, str):
                print(f"{cmd.name:<22} {'-':>6}  skipped: {result}")
                continue
            left = ", ".join(f"{k} {v}" for k, v in result.left.items())
            exits = ", ".join(f"{k}: {v}" for k, v in sorted(result.exits.items()))
            print(f"{cmd.name:<22} {result.trials:>6}  {left:<60}  {exits}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
