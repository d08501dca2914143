"""Time and memory of `virtbench detect --root` on hostile captured trees.

Each tree is analysed in a fresh child process (``python -c 'detect(...)'``) with a timeout;
the script prints its wall time, its peak resident memory (``ru_maxrss`` of that child, from
``wait4``) and what detect said about the tree. Trees: FIFOs as ``dmesg.txt`` and
``proc/cpuinfo``, a character device (``/dev/zero``'s numbers, when ``mknod`` is permitted),
symlink loops, absolute links into the live ``/proc`` and ``/sys``, a 100 MB kernel log with
many boots, a 100 MB log of one boot, a 1 TB sparse log, a 100 MB log in one line, a
directory of 100000 entries, a 100 MB ``proc/cpuinfo``, and a baseline tree.

    PYTHONPATH=src python bench/detect_hostile.py [--size-mb 100]

The trees are written to a temporary directory and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "detect"

CHILD = (
    "import json, resource, sys\n"
    "from virtbench.probes import detect\n"
    "r = detect(sys.argv[1])\n"
    "u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print(json.dumps({'summary': r.summary, 'unreadable': r.unreadable,\n"
    "                  'log': r.facts.get('kernel_log'), 'rss_kib': u.ru_maxrss,\n"
    "                  'detect_s': r.duration_s, 'cpu_s': u.ru_utime + u.ru_stime}))\n"
)

BOOT = (
    "[    0.000000] Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org) #{n}\n"
    "[    0.000000] DMI: Xen HVM domU, BIOS 4.17 01/01/2024\n"
    "[    0.000000] Hypervisor detected: Xen HVM\n"
    "[    0.000000] Booting paravirtualized kernel on Xen HVM\n"
)
FILLER = "[  120.000000] audit: type=1400 audit(1700000000.000:42): apparmor=\"STATUS\"\n"


def _big_log(path: Path, size: int, boots: int) -> None:
    per_boot = size // boots
    chunk = FILLER * 256
    with open(path, "w") as fh:
        for n in range(boots):
            fh.write(BOOT.format(n=n))
            written = 0
            while written < per_boot:
                fh.write(chunk)
                written += len(chunk)


def build(base: Path, size_mb: int) -> dict[str, Path]:
    trees: dict[str, Path] = {}

    def tree(name: str) -> Path:
        p = base / name
        (p / "proc").mkdir(parents=True)
        trees[name] = p
        return p

    t = tree("baseline (xen-pv-domu fixture)")
    os.rmdir(t / "proc")
    import shutil

    shutil.copytree(DATA / "xen-pv-domu", t, dirs_exist_ok=True, symlinks=True)
    t = tree("FIFOs: dmesg.txt, proc/cpuinfo")
    os.mkfifo(t / "dmesg.txt")
    os.mkfifo(t / "proc" / "cpuinfo")
    t = tree("character device as proc/cpuinfo")
    try:
        os.mknod(t / "proc" / "cpuinfo", 0o644 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        (t / "proc" / "cpuinfo").write_text("mknod not permitted here\n")
    t = tree("symlink loops")
    (t / "a").symlink_to("b")
    (t / "b").symlink_to("a")
    (t / "dmesg.txt").symlink_to("a")
    (t / "proc" / "self").symlink_to("self/self")
    t = tree("absolute links to /proc and /sys")
    os.rmdir(t / "proc")
    (t / "proc").symlink_to("/proc")
    (t / "sys").symlink_to("/sys")
    (t / "dmesg.txt").symlink_to("/dev/kmsg")
    size = size_mb * 2**20
    t = tree(f"{size_mb} MB kernel log, 50 boots")
    _big_log(t / "kern.log", size, 50)
    t = tree(f"{size_mb} MB kernel log, one boot")
    _big_log(t / "dmesg.txt", size, 1)
    t = tree("1 TB sparse kernel log")
    with open(t / "dmesg.txt", "w") as fh:
        fh.write(BOOT.format(n=0))
        fh.truncate(2**40)
    t = tree(f"{size_mb} MB kernel log in one line")
    with open(t / "dmesg.txt", "w") as fh:
        fh.write(BOOT.format(n=0))
        line = "x" * (1 << 20)
        for _ in range(size_mb):
            fh.write(line)
    t = tree("100000 entries in sys/block")
    (t / "sys" / "block").mkdir(parents=True)
    for i in range(100000):
        (t / "sys" / "block" / f"sd{i}").mkdir()
    t = tree(f"{size_mb} MB proc/cpuinfo")
    block = (DATA / "kvm-virtio" / "proc" / "cpuinfo").read_text()
    with open(t / "proc" / "cpuinfo", "w") as fh:
        while fh.tell() < size:
            fh.write(block * 64)
    return trees


def run(tree: Path, timeout: float) -> tuple[float, int, dict[str, object] | str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tree)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return time.perf_counter() - t0, 0, f"HUNG (killed after {timeout:.0f} s)"
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return wall, 0, f"exit {proc.returncode}: {err.decode(errors='replace')[-200:]}"
    doc = json.loads(out)
    return wall, int(doc.get("rss_kib", 0)), doc


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="detect-hostile-") as tmp:
        t0 = time.perf_counter()
        trees = build(Path(tmp), args.size_mb)
        print(f"trees written in {time.perf_counter() - t0:.1f} s "
              f"(load average {os.getloadavg()[0]:.2f})\n")
        print(f"{'tree':40} {'wall s':>7} {'detect s':>8} {'CPU s':>6} {'max RSS MB':>10}  "
              "result")
        worst = 0.0
        for name, path in trees.items():
            wall, rss, result = run(path, args.timeout)
            worst = max(worst, wall)
            det = cpu = float("nan")
            if isinstance(result, dict):
                det, cpu = float(result["detect_s"]), float(result["cpu_s"])
                log = result.get("log") or {}
                skipped = "; ".join(log.get("skipped") or []) if isinstance(log, dict) else ""
                lines = log.get("lines") if isinstance(log, dict) else None
                unread = [u for u in result.get("unreadable", [])  # type: ignore[union-attr]
                          if "no kernel log" not in u][:2]
                text = f"{result['summary']}; log lines {lines}"
                text += f"; skipped: {skipped}" if skipped else ""
                text += f"; unreadable: {unread}" if unread else ""
            else:
                text = result
            print(f"{name:40} {wall:7.2f} {det:8.2f} {cpu:6.2f} {rss / 1024:10.1f}  "
                  f"{text[:150]}")
        print(f"\nslowest tree: {worst:.2f} s (timeout {args.timeout:.0f} s); max RSS: the "
              "child's own peak (Python and virtbench included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
