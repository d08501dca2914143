"""Kill virtbench at random moments, run the next command, and count what is left.

For every command below: one complete run first (its duration bounds the random moments),
then N trials per signal (SIGINT, SIGKILL): start the command in its own session with its own
temp and data directories, send the signal to virtbench at a moment drawn uniformly over the
measured duration, wait for it, run the next virtbench command (``virtbench runs``: the sweep
on start cleans what a killed run left), then count what is left:

* processes: of the killed command's session, or carrying the trial's marker in their
  environment (``VIRTBENCH_KILLPOINTS_TRIAL``, inherited by every descendant, also those
  that start a session of their own), or naming the trial's directory on their command line;
  QEMU processes among them are counted apart;
* entries in the trial's temp directory (work directories, build temp files, QEMU files),
  and temporary files of interrupted writes (``.*.tmp``) anywhere in its data directory;
* cgroups ``virtbench.<pid>.*`` of any process of the trial (seen just before the signal);
* sysctls: the ones the trial's ``tune`` sets, against their values recorded before the
  trial (tune runs on a private copy, ``--sysctl-root``, unless ``--real-sysctls``; the real
  ones are checked too, so a tune that ignored the root would show);
* documents not in a final status, run markers left in ``<data>/running``;
* ``fleet run``: remote processes of the test user, remote virtbench directories and Ansible
  job files (not the bundle cache, kept by design), SSH connections still open to the hosts,
  after ``fleet cancel`` of the run when it is to be resumed or cancelled (a controller
  interrupted or killed leaves its detached remote commands running by design: ``fleet
  resume`` collects them, ``fleet cancel`` stops them and removes their files).

Trials run in ``--jobs`` parallel lanes; commands that share state run one trial at a time
(``tune``; the QEMU commands, which each need a CPU; ``fleet run``, which shares its sshd
hosts). Run from the project root as root (containers, cgroups, the fleet's test user);
``--vm`` adds the QEMU commands (TCG), ``--fleet`` the fleet (sshd on loopback, Ansible):

    nice -n 10 .venv/bin/python bench/kill_points.py [--trials N] [--jobs N] [--only NAME,...]
        [--vm] [--fleet] [--until HH:MM] [--log FILE]

INT and KILL count trials where the signal reached a running command; a command that had
already ended at its moment (the window was measured under another load) is not a kill: it is
counted under ``ended``, the window is narrowed to that run's duration and the trial drawn again.
``--until`` stops starting trials at that UTC time (the table then says how many ran);
``--report LOG...`` prints the table of earlier ``--log`` files.
The figures in docs/reliability.md come from this script (with the command lines shown there).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
REPORT = ROOT / "tests" / "data" / "unixbench-6.0-2cpu.txt"
CGROUP_ROOT = Path("/sys/fs/cgroup")
FINAL = {"complete", "partial", "failed", "interrupted", "abandoned"}
FLEET_DONE = {"done", "cancelled"}  # a fleet run neither to resume nor to cancel
MARKER = "VIRTBENCH_KILLPOINTS_TRIAL"
TUNED = {"vm.dirty_ratio": "31"}  # what the tune trials set: a value no test here uses
KEYS = ("processes", "qemu", "temp entries", "cgroups", "sysctls", "docs running",
        "markers", "remote processes", "remote dirs", "ssh sessions")


@dataclass
class Command:
    name: str
    args: Callable[[Path], list[str]]  # trial directory -> virtbench arguments
    needs: str = ""  # "root", "vm", "fleet"
    lane: str = ""  # commands with the same lane never run two trials at once
    setup: Callable[[Path], None] | None = None  # per-trial preparation


@dataclass
class Tally:
    full: float = 0.0
    trials: dict[str, int] = field(default_factory=dict)  # signal sent while it ran
    ended_first: int = 0  # the command had ended before its moment: not a kill, retried
    exits: dict[str, int] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def add(self, sig: str, exit_: str, left: dict[str, int], note: str,
            sent: bool = True) -> None:
        if sent:
            self.trials[sig] = self.trials.get(sig, 0) + 1
        else:
            self.ended_first += 1
        self.exits[exit_] = self.exits.get(exit_, 0) + 1
        for k, v in left.items():
            self.left[k] = self.left.get(k, 0) + v
        if any(left.values()) and len(self.examples) < 5:
            self.examples.append(note)


# ---- the commands ------------------------------------------------------------------------
class Fleet:
    """The sshd hosts of the ``fleet run`` trials (one testbed for the whole campaign)."""

    def __init__(self, base: Path) -> None:
        sys.path.insert(0, str(SRC))
        from virtbench.fleet.testbed import LocalFleet

        self.tb = LocalFleet(base, 1)
        self.tb.start()

    def remote(self) -> tuple[int, int]:
        from virtbench.fleet import testbed

        procs = len([p for p in testbed._pids_of_uid(self.tb.uid)
                     if _state(p) not in ("Z", "X", "")]) if self.tb.uid != os.getuid() else 0
        return procs, len(self.remote_dirs())

    def sessions(self) -> list[int]:
        """sshd processes serving a connection to the hosts: an SSH connection the
        controller (Ansible's ControlPersist master) still holds open."""
        from virtbench.fleet import testbed

        return [c for h in self.tb.hosts if h.proc is not None
                for c in testbed._children(h.proc.pid)
                if _state(c) not in ("Z", "X", "")]

    def describe(self) -> str:
        from virtbench.fleet import testbed

        pids = set(self.sessions())
        if self.tb.uid != os.getuid():
            pids |= set(testbed._pids_of_uid(self.tb.uid))
        return str(sorted(_cmdline(p) for p in pids)[:6]) + str(
            [str(p) for p in self.remote_dirs()][:3])

    def remote_dirs(self) -> list[Path]:
        """virtbench's directories and Ansible's async job files on the hosts; not the
        bundle cache (``bundles/<host>/<hash>``: kept by design), only temporary entries
        in it."""
        home = self.tb.home
        top = home / ".cache" / "virtbench-fleet"
        return [*(p for p in top.glob("*") if p.name != "bundles"),
                *(p for p in top.glob("bundles/*/*") if p.name.startswith(".")),
                *(home / ".ansible_async").glob("*")]

    def close(self) -> None:
        self.tb.close()


FLEET: Fleet | None = None


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")[:120]
    except OSError:
        return ""


def _tune_setup(t: Path) -> None:
    for name, _ in TUNED.items():
        p = t / "sys" / Path(*name.split("."))
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("20\n")


def commands(real_sysctls: bool) -> list[Command]:
    tiny = ["--workload", "sysmix", "--iterations", "300"]

    def fixed(*a: str) -> Callable[[Path], list[str]]:
        return lambda _t: list(a)

    def tune(t: Path) -> list[str]:
        root = [] if real_sysctls else ["--sysctl-root", str(t / "sys")]
        sets = [x for k, v in TUNED.items() for x in ("--set", f"{k}={v}")]
        return ["tune", *root, *sets, "--rounds", "2", "--", "io", "postmark", "--files",
                "100", "--transactions", "2000"]

    def fleet(_t: Path) -> list[str]:
        assert FLEET is not None
        return ["fleet", "run", "-i", str(FLEET.tb.inventory), "--deps", "ship",
                "--poll-interval", "1", "--", "run", "--quick", "-c", "1", "syscall"]

    return [
        Command("run", fixed("run", "--quick", "-c", "1", "shell8", "fstime")),
        Command("io postmark", fixed("io", "postmark", "--files", "300", "--transactions",
                                     "8000")),
        Command("io seqread", fixed("io", "seqread", "--size", "32m", "--repeat", "2")),
        Command("consolidate process", fixed("consolidate", "--kind", "process",
                                             "--instances", "1,2", *tiny)),
        Command("consolidate container", fixed("consolidate", "--kind", "container",
                                               "--instances", "1,2", *tiny), "root"),
        Command("consolidate vm", fixed("consolidate", "--kind", "vm", "--instances", "1",
                                        "--accel", "tcg", *tiny), "vm", "qemu-consolidate"),
        Command("cap", fixed("cap", "--kind", "container", "--quota", "1,0.3", "--duration",
                             "0.5"), "root"),
        Command("tune", tune, "", "tune", None if real_sysctls else _tune_setup),
        Command("migrate", fixed("migrate", "--bandwidth", "100M", "--dirty-rate", "2",
                                 "--wss", "16", "--settle", "0.3", "--accel", "tcg"),
                "vm", "qemu-migrate"),
        Command("import", fixed("import", str(REPORT), "--label", "k=v")),
        Command("fleet run", fleet, "fleet", "fleet"),
    ]


# ---- one trial ---------------------------------------------------------------------------
CACHE = Path()  # shared compile/wheel cache of all trials (set in main)


def _env(trial: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(SRC), TMPDIR=str(trial / "tmp"),
               XDG_DATA_HOME=str(trial / "data"), XDG_CACHE_HOME=str(CACHE))
    env[MARKER] = str(trial)
    env.pop("VIRTBENCH_DB", None)
    return env


def _start(cmd: Command, trial: Path) -> subprocess.Popen[bytes]:
    for d in ("tmp", "data"):
        (trial / d).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([sys.executable, "-m", "virtbench", *cmd.args(trial)],
                            env=_env(trial), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, cwd=trial)


def _processes(sid: int, trial: Path) -> dict[int, str]:
    """pid -> command line of every live process of the trial (see the module text)."""
    mark = f"{MARKER}={trial}\0".encode()
    frag = str(trial).encode()
    me = os.getpid()
    found: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == me:
            continue
        try:
            stat = (d / "stat").read_text().rpartition(")")[2].split()
            cmdline = (d / "cmdline").read_bytes()
            try:
                environ = (d / "environ").read_bytes()
            except OSError:
                environ = b""
        except OSError:
            continue
        if stat[0] in ("Z", "X"):
            continue
        if int(stat[3]) == sid or mark in environ or frag in cmdline:
            found[int(d.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
    return found


def _cgroups(pids: set[int]) -> list[str]:
    found = []
    for top in (CGROUP_ROOT, *CGROUP_ROOT.glob("*")):
        try:
            for p in top.iterdir():
                parts = p.name.split(".")
                if (len(parts) > 2 and parts[0] == "virtbench" and parts[1].isdigit()
                        and int(parts[1]) in pids):
                    found.append(str(p))
        except OSError:
            continue
    return found


def _cache_temp(pids: set[int]) -> list[Path]:
    """Temporary entries of the shared build cache made by a process of the trial."""
    found = []
    for p in CACHE.rglob(".*"):
        parts = p.name.split("-")
        if (p.name.startswith((".tmp-", ".old-")) and len(parts) > 2 and parts[1].isdigit()
                and int(parts[1]) in pids):
            found.append(p)
    return found


def _data_temp(t: Path) -> list[Path]:
    """Temporary files of interrupted writes anywhere in the trial's data directory."""
    return [p for p in (t / "data").rglob("*.tmp") if p.name.startswith(".")]


def _sysctls(trial: Path, real_sysctls: bool) -> dict[str, str]:
    """Values of the tuned sysctls: of the trial's private tree, and the real ones."""
    out = {}
    for name in TUNED:
        rel = Path(*name.split("."))
        with contextlib.suppress(OSError):
            out[f"real {name}"] = (Path("/proc/sys") / rel).read_text().strip()
        if not real_sysctls:
            with contextlib.suppress(OSError):
                out[name] = (trial / "sys" / rel).read_text().strip()
    return out


def _docs(trial: Path) -> tuple[int, int]:
    """(documents not in a final status, markers in running/), fleet states included."""
    data = trial / "data" / "virtbench"
    n = 0
    for p in (data / "results").glob("*.json"):
        try:
            n += json.loads(p.read_text()).get("status") not in FINAL
        except (OSError, ValueError):
            n += 1
    markers = len(list((data / "running").glob("*"))) if (data / "running").is_dir() else 0
    return n, markers


def _fleet_running(trial: Path) -> list[str]:
    """Fleet runs of the trial that are to be resumed or cancelled: interrupted (their
    detached commands go on by design), or ``running`` with their controller gone."""
    ids = []
    for p in (trial / "data" / "virtbench" / "fleet").glob("*/state.json"):
        try:
            if json.loads(p.read_text()).get("status") not in FLEET_DONE:
                ids.append(p.parent.name)
        except (OSError, ValueError):
            ids.append(p.parent.name)
    return ids


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> str:
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "hang"
    return "ok" if rc == 0 else f"exit {rc}" if rc > 0 else f"signal {-rc}"


def _virtbench(trial: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "virtbench", *args], env=_env(trial),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   timeout=300, cwd=trial)


def trial(cmd: Command, sig: int, delay: float, base: Path,
          real_sysctls: bool) -> tuple[str, dict[str, int], str, float | None]:
    """(exit, what is left, a note, the command's own duration if it ended before its
    moment: then no signal was sent)."""
    t = Path(tempfile.mkdtemp(prefix="kp-", dir=base))
    if cmd.setup is not None:
        cmd.setup(t)
    before = _sysctls(t, real_sysctls) if cmd.name == "tune" else {}
    proc = _start(cmd, t)
    started = time.monotonic()
    seen: set[int] = {proc.pid}
    time.sleep(delay)
    ended: float | None = None
    if proc.poll() is None:
        seen |= set(_processes(proc.pid, t))
        proc.send_signal(sig)
    else:
        ended = time.monotonic() - started  # at most this long: it ended while we slept
    exit_ = _wait(proc, 300)
    time.sleep(0.2)  # children that die with their parent (PDEATHSIG) get a moment
    _virtbench(t, "runs")
    left_procs = _processes(proc.pid, t)
    seen |= set(left_procs)
    qemu = sum(1 for c in left_procs.values() if "qemu-system" in c)
    docs, markers = _docs(t)
    after = _sysctls(t, real_sysctls) if cmd.name == "tune" else {}
    changed = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
    # Other people's tests change the real ones too: only our own value counts there.
    foreign = {k: c for k, c in changed.items()
               if k.startswith("real ") and c[1] != TUNED[k.removeprefix("real ")]}
    changed = {k: c for k, c in changed.items() if k not in foreign}
    cgs = _cgroups(seen)
    left = {
        "processes": len(left_procs) - qemu,
        "qemu": qemu,
        "temp entries": (len(list((t / "tmp").iterdir())) + len(_cache_temp(seen))
                         + len(_data_temp(t))),
        "cgroups": len(cgs),
        "sysctls": len(changed),
        "docs running": docs,
        "markers": markers,
    }
    if cmd.name == "fleet run" and FLEET is not None:
        for run_id in _fleet_running(t):
            _virtbench(t, "fleet", "cancel", run_id)
        time.sleep(0.5)
        left["remote processes"], left["remote dirs"] = FLEET.remote()
        sessions = FLEET.sessions()
        left["ssh sessions"] = len(sessions)
    with_left = {k: v for k, v in left.items() if v}
    note = (f"{cmd.name} {signal.Signals(sig).name} at {delay:.2f} s: {with_left}"
            f" {sorted(left_procs.values())[:6]} {cgs[:3]} {changed}"
            f" {sorted(p.name for p in (t / 'tmp').iterdir())[:6]}"
            f"{f' foreign sysctl changes {foreign}' if foreign else ''}"
            f"{f' remote {FLEET.describe()}' if FLEET and cmd.name == 'fleet run' else ''}")
    if with_left:
        print("  " + note, file=sys.stderr, flush=True)
    _cleanup(proc.pid, t, left_procs, fleet=cmd.name == "fleet run")
    for k, (old, _new) in changed.items():  # put back what a trial changed
        if old is not None and not k.startswith("real "):
            (t / "sys" / Path(*k.split("."))).write_text(old + "\n")
    shutil.rmtree(t, ignore_errors=True)
    return exit_, left, note, ended


def _cleanup(pid: int, t: Path, left: dict[int, str], fleet: bool = False) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)
    for p in left:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    if fleet and FLEET is not None and FLEET.tb.uid != os.getuid():
        from virtbench.fleet import testbed

        for p in testbed._pids_of_uid(FLEET.tb.uid):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        for d in FLEET.remote_dirs():
            if d.is_dir():
                shutil.rmtree(d, ignore_errors=True)
            else:
                d.unlink(missing_ok=True)


def measure(cmd: Command, base: Path, real_sysctls: bool) -> float | str:
    t = Path(tempfile.mkdtemp(prefix="kp-full-", dir=base))
    if cmd.setup is not None:
        cmd.setup(t)
    started = time.monotonic()
    proc = _start(cmd, t)
    status = _wait(proc, 900)
    full = time.monotonic() - started
    _cleanup(proc.pid, t, _processes(proc.pid, t), fleet=cmd.name == "fleet run")
    shutil.rmtree(t, ignore_errors=True)
    return full if status == "ok" else f"the complete run failed ({status})"


# ---- the campaign ------------------------------------------------------------------------
@dataclass
class Item:
    cmd: Command
    sig: int


class Campaign:
    def __init__(self, cmds: list[Command], n: int, base: Path, opts: argparse.Namespace,
                 until: float | None, log: Path | None) -> None:
        self.base = base
        self.n = n
        self.opts = opts
        self.until = until
        self.log = log
        self.lock = threading.Condition()
        self.busy: set[str] = set()
        self.tally = {c.name: Tally() for c in cmds}
        self.skipped: dict[str, str] = {}
        self.full: dict[str, float] = {}
        self.measuring: set[str] = set()
        # interleave: trial i of every command before trial i+1 of any, signals alternating
        self.items = [Item(c, s) for i in range(n) for c in cmds
                      for s in (signal.SIGINT, signal.SIGKILL)[::1 if i % 2 else -1]]

    def _take(self) -> Item | None:
        with self.lock:
            while True:
                if self.until is not None and time.time() >= self.until:
                    return None
                if not self.items:
                    return None
                for i, it in enumerate(self.items):
                    name = it.cmd.name
                    if name in self.skipped:
                        continue
                    if it.cmd.lane and it.cmd.lane in self.busy:
                        continue
                    if name not in self.full and name in self.measuring:
                        continue
                    del self.items[i]
                    if it.cmd.lane:
                        self.busy.add(it.cmd.lane)
                    if name not in self.full:
                        self.measuring.add(name)
                    return it
                self.items = [it for it in self.items if it.cmd.name not in self.skipped]
                if not self.items:
                    return None
                self.lock.wait(1.0)

    def _done(self, it: Item) -> None:
        with self.lock:
            if it.cmd.lane:
                self.busy.discard(it.cmd.lane)
            self.lock.notify_all()

    def lane(self) -> None:
        while (it := self._take()) is not None:
            try:
                self._one(it)
            except Exception as exc:
                print(f"  {it.cmd.name}: harness error: {exc!r}", file=sys.stderr, flush=True)
            finally:
                self._done(it)

    def _one(self, it: Item) -> None:
        name = it.cmd.name
        if name not in self.full:
            full = measure(it.cmd, self.base, self.opts.real_sysctls)
            with self.lock:
                self.measuring.discard(name)
                if isinstance(full, str):
                    self.skipped[name] = full
                    return
                self.full[name] = full
                self.tally[name].full = full
            print(f"  {name}: complete run {full:.1f} s", file=sys.stderr, flush=True)
        delay = random.uniform(0, self.full[name])
        exit_, left, note, ended = trial(it.cmd, it.sig, delay, self.base,
                                         self.opts.real_sysctls)
        sig = signal.Signals(it.sig).name
        with self.lock:
            self.tally[name].add(sig, exit_, left, note, sent=ended is None)
            if ended is not None:
                # The complete run that set the window was slower than this one (the load
                # changed): narrow the window to what this run took and draw again, so that
                # every counted trial is a kill. Bounded, so a command that always ends at
                # once cannot loop.
                self.full[name] = min(self.full[name], ended * 0.9)
                self.tally[name].full = self.full[name]
                if self.tally[name].ended_first <= 2 * self.n:
                    self.items.append(it)
            if self.log is not None:
                with self.log.open("a") as f:
                    f.write(json.dumps({"command": name, "signal": sig, "delay": delay,
                                        "exit": exit_, "left": left, "sent": ended is None,
                                        "at": dt.datetime.now(dt.UTC).isoformat()}) + "\n")


def _usable(cmd: Command, opts: argparse.Namespace) -> str:
    if cmd.needs in ("root", "fleet") and os.geteuid() != 0:
        return "needs root"
    if cmd.needs == "vm" and not opts.vm:
        return "VM commands are opt-in (--vm)"
    if cmd.needs == "fleet" and not opts.fleet:
        return "the fleet is opt-in (--fleet)"
    return ""


def _until(text: str) -> float | None:
    if not text:
        return None
    h, m = (int(x) for x in text.split(":"))
    now = dt.datetime.now(dt.UTC)
    at = now.replace(hour=h, minute=m, second=0, microsecond=0)
    return at.timestamp()


def print_table(c: Campaign, cmds: list[Command]) -> None:
    print(f"{'command':<22} {'full s':>6} {'INT':>4} {'KILL':>4} {'ended':>5}  "
          f"{'left after the next command':<44}  exits")
    for cmd in cmds:
        if cmd.name in c.skipped:
            print(f"{cmd.name:<22} {'-':>6} {'-':>4} {'-':>4} {'-':>5}  "
                  f"skipped: {c.skipped[cmd.name]}")
            continue
        tl = c.tally[cmd.name]
        left = ", ".join(f"{k} {v}" for k, v in tl.left.items() if v) or "nothing"
        exits = ", ".join(f"{k}: {v}" for k, v in sorted(tl.exits.items()))
        print(f"{cmd.name:<22} {tl.full:>6.1f} {tl.trials.get('SIGINT', 0):>4} "
              f"{tl.trials.get('SIGKILL', 0):>4} {tl.ended_first:>5}  {left:<44}  {exits}",
              flush=True)


@contextlib.contextmanager
def _fleet(base: Path, wanted: bool) -> Iterator[None]:
    global FLEET
    if not wanted:
        yield
        return
    FLEET = Fleet(Path(f"/tmp/vbkp-{os.getpid()}"))
    try:
        yield
    finally:
        FLEET.close()
        FLEET = None


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def report(logs: list[Path]) -> int:
    """The table of earlier campaigns from their ``--log`` files (one JSON line a trial)."""
    tallies: dict[str, Tally] = {}
    for log in logs:
        for line in log.read_text().splitlines():
            d = json.loads(line)
            tl = tallies.setdefault(d["command"], Tally())
            # Logs before "sent" was recorded: an "ok" exit means the command had ended first.
            tl.add(d["signal"], d["exit"], d["left"], "", sent=d.get("sent", d["exit"] != "ok"))
    order = [c.name for c in commands(False)]
    print(f"{'command':<22} {'INT':>4} {'KILL':>4} {'ended':>5}  "
          f"{'left after the next command':<30}  exits")
    for name in sorted(tallies, key=lambda n: order.index(n) if n in order else 99):
        tl = tallies[name]
        left = ", ".join(f"{k} {v}" for k, v in tl.left.items() if v) or "nothing"
        exits = ", ".join(f"{k}: {v}" for k, v in sorted(tl.exits.items()))
        print(f"{name:<22} {tl.trials.get('SIGINT', 0):>4} {tl.trials.get('SIGKILL', 0):>4} "
              f"{tl.ended_first:>5}  {left:<30}  {exits}")
    return 0


def main() -> int:
    global CACHE
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--trials", type=int, default=100, help="per signal and command (100)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel lanes (1)")
    ap.add_argument("--only", default="", help="comma-separated command names")
    ap.add_argument("--vm", action="store_true", help="include the QEMU commands (slow)")
    ap.add_argument("--fleet", action="store_true", help="include fleet run (sshd, Ansible)")
    ap.add_argument("--real-sysctls", action="store_true",
                    help="tune the real /proc/sys (default: a private copy per trial)")
    ap.add_argument("--until", default="", metavar="HH:MM", help="start no trial after (UTC)")
    ap.add_argument("--log", type=Path, help="append one JSON line per trial")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report", type=Path, nargs="+", metavar="LOG",
                    help="print the table of earlier --log files and exit")
    opts = ap.parse_args()
    if opts.report:
        return report(opts.report)
    # Started in the background (`cmd &` from a script), this process and every command it
    # starts would ignore SIGINT (an ignored signal stays ignored across exec): the SIGINT
    # trials would test nothing. A handled signal is reset to its default at exec.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    random.seed(opts.seed)
    base = Path(tempfile.mkdtemp(prefix="virtbench-killpoints-"))
    CACHE = base / "cache"
    wanted = {w.strip() for w in opts.only.split(",") if w.strip()}
    cmds = [c for c in commands(opts.real_sysctls) if not wanted or c.name in wanted]
    runnable = []
    for c in cmds:
        why = _usable(c, opts)
        if why:
            print(f"  {c.name}: skipped: {why}", file=sys.stderr)
        else:
            runnable.append(c)
    started = time.monotonic()
    try:
        with _fleet(base, any(c.needs == "fleet" for c in runnable)):
            camp = Campaign(runnable, opts.trials, base, opts, _until(opts.until), opts.log)
            lanes = [threading.Thread(target=camp.lane) for _ in range(max(1, opts.jobs))]
            for th in lanes:
                th.start()
            try:
                for th in lanes:
                    th.join()
            except KeyboardInterrupt:  # finish the trials in progress, start no more
                with camp.lock:
                    camp.items.clear()
                for th in lanes:
                    th.join()
            print_table(camp, runnable)
            print(f"wall {time.monotonic() - started:.0f} s, jobs {opts.jobs}, "
                  f"load average at the end {os.getloadavg()[0]:.1f}")
            for cmd in runnable:
                for ex in camp.tally[cmd.name].examples:
                    print("  " + ex)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
