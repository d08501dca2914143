"""Live migration between two QEMU processes on this host, measured.

One guest lineage: a guest boots once (kernel + initramfs with ``vmload``) and is moved from
QEMU process to QEMU process, once per sweep point; each successful move makes the destination
the next source, so the guest's boot id and its progress counter prove it never restarted.

Per point: start ``vmload`` in the guest (dirtying memory at the point's rate), let it run
``settle`` seconds (the *before* window), start the destination (``-incoming defer``), set
capabilities and parameters over QMP, ``migrate``, poll ``query-migrate`` every 50 ms (samples
and one record per dirty-memory sync = iteration), and either see ``completed`` or give up at
``timeout`` (``migrate_cancel``: *not converged*, the guest stays on the source). After a
completed move the source QEMU is quit and must be gone, and the destination runs ``after``
seconds more. Guest-side downtime is the largest gap between progress lines as they arrive on
the host (host clock), across the switch-over.

Storage modes: ``none`` (RAM only), ``shared`` (both QEMUs open the same disk file, as with NFS
or iSCSI shared storage), ``block`` (each has its own local disk: the source mirrors it to the
destination over NBD with ``blockdev-mirror`` before the RAM migration, and completes the
mirror at the switch-over, as libvirt does for non-shared storage).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virtbench.errors import UsageError
from virtbench.units import parse_size
from virtbench.vm import build, initramfs
from virtbench.vm.qemu import Guest, GuestConfig, GuestError, SerialLine, VMSession

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PROGRESS = re.compile(r"^P ([0-9a-f]{8}) (\d+) (\d+) (\d+)$")
MiB = 1024 * 1024
UNLIMITED = 1 << 40
POLL = 0.05
KICK_AFTER = 1.0
GUEST_RESERVE_MB = 80
"""Memory the Debian guest kernel and the initramfs need besides the working set."""
STORAGE_MODES = ("none", "shared", "block")


def parse_rate(text: str, what: str = "bandwidth") -> int:
    """``10M``, ``512K``, ``1.5G``, ``200MB/s``, ``unlimited`` -> bytes per second (binary units,
    as QEMU's ``migrate_set_speed``)."""
    t = text.strip().lower().removesuffix("/s")
    if t in ("unlimited", "max", "inf"):
        return UNLIMITED
    return parse_size(t, f"--{what}", positive=True, kind="rate like 10M, 512K or 1G")


def parse_list(text: str, parse: Callable[[str], Any]) -> list[Any]:
    return [parse(p) for p in text.split(",") if p.strip()]


def fmt_rate(bps: int) -> str:
    if bps >= UNLIMITED:
        return "unlimited"
    for unit, size in (("G", 1024 * MiB), ("M", MiB), ("K", 1024)):
        if bps >= size and bps % size == 0:
            return f"{bps // size}{unit}"
    return f"{bps / MiB:.2f}M"


@dataclass
class MigrateOptions:
    memory_mb: int = 128
    vcpus: int = 1
    wss_mb: int = 32
    """The guest workload's working set (filled with non-zero data, dirtied round-robin)."""
    storage: str = "none"
    disk_mb: int = 64
    downtime_limit_ms: int = 300
    auto_converge: bool = False
    postcopy: bool = False
    """Switch to post-copy after ``postcopy_after`` iterations of pre-copy."""
    postcopy_after: int = 2
    timeout: float = 60.0
    """Seconds of pre-copy after which a migration counts as not converging (cancelled)."""
    settle: float = 2.0
    """Seconds of workload measured before and after each migration."""
    interval_ms: int = 20
    boot_timeout: float = 120.0
    pin: list[int] | None = None


@dataclass
class Point:
    bandwidth: int
    dirty_rate_mb: float


@dataclass
class ProgressSample:
    t: float
    nonce: str
    seq: int
    work: int
    dirtied: int
    where: str


@dataclass
class PointResult:
    row: dict[str, Any]
    iterations: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)


def _progress(lines: list[SerialLine], where: str) -> list[ProgressSample]:
    out = []
    for ln in lines:
        m = PROGRESS.match(ln.text)
        if m:
            out.append(ProgressSample(ln.t, m.group(1), int(m.group(2)), int(m.group(3)),
                                      int(m.group(4)), where))
    return out


CRASH_MARKERS = ("Kernel panic", "Oops:", "BUG:", "general protection fault",
                 "Fatal exception")


def _crash_line(g: Guest) -> str | None:
    try:
        text = g.console_path.read_text(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if any(m in line for m in CRASH_MARKERS):
            return line.split("] ", 1)[-1].strip()[:160]
    return None


def _crashed(g: Guest) -> bool:
    return not g.alive() or _crash_line(g) is not None


def _rate(samples: list[ProgressSample], t0: float, t1: float) -> float | None:
    """Work chunks per second between host times t0 and t1 (first and last line inside)."""
    inside = [s for s in samples if t0 <= s.t <= t1]
    if len(inside) < 2 or inside[-1].t - inside[0].t <= 0:
        return None
    return (inside[-1].work - inside[0].work) / (inside[-1].t - inside[0].t)


def _mb(n: float | None) -> float | None:
    return None if n is None else round(n / MiB, 3)


class Migrator:
    """A guest lineage and the sweep of migrations it goes through. Use inside a VMSession."""

    def __init__(self, session: VMSession, kernel: Path, accel: str, options: MigrateOptions,
                 log: Callable[[str], None] | None = None) -> None:
        self.s = session
        self.kernel = kernel
        self.accel = accel
        self.o = options
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.generation = 0
        self.current: Guest | None = None
        self.boot_id: str | None = None
        self.boot_seconds: float | None = None
        self.initrd = self.s.dir / "initrd"

    # ---- set-up ---------------------------------------------------------------------------
    def _disk(self, gen: int) -> Path | None:
        if self.o.storage == "none":
            return None
        if self.o.storage == "shared":
            return self.s.dir / "shared-disk.raw"
        return self.s.dir / f"local-disk-{gen}.raw"

    def _make_disk(self, path: Path, fill: bool) -> None:
        with path.open("wb") as f:
            if fill:  # real data, so a mirror has to copy every block
                chunk = os.urandom(MiB)
                for _ in range(self.o.disk_mb):
                    f.write(chunk)
            else:
                f.truncate(self.o.disk_mb * MiB)

    @property
    def kernel_args(self) -> str:
        """Extra guest kernel arguments. Under TCG: ``pti=on``. Without it, long migrations
        (10M/s, 20-30 iterations) left the destination guest crashed or hung in about half of
        the moves on the development machine (QEMU 7.2); with it, none of 8 such moves did.
        Consistent with writes through QEMU's software TLB escaping dirty tracking until the
        TLB is flushed: with page-table isolation every kernel entry reloads CR3, which
        flushes it. KVM tracks dirty pages in hardware and needs nothing."""
        return "pti=on" if self.accel == "tcg" else ""

    def _config(self, gen: int) -> GuestConfig:
        return GuestConfig(kernel=self.kernel, initrd=self.initrd, accel=self.accel,
                           vcpus=self.o.vcpus, memory_mb=self.o.memory_mb,
                           disk=self._disk(gen), pin=self.o.pin, append=self.kernel_args)

    def boot(self) -> None:
        if self.o.storage not in STORAGE_MODES:
            raise UsageError(f"--storage must be one of {', '.join(STORAGE_MODES)}")
        if self.o.wss_mb > self.o.memory_mb - GUEST_RESERVE_MB:
            raise UsageError(f"--wss {self.o.wss_mb} MB leaves too little of --memory "
                             f"{self.o.memory_mb} MB for the guest kernel (keep "
                             f"{GUEST_RESERVE_MB} MB: --wss at most "
                             f"{max(0, self.o.memory_mb - GUEST_RESERVE_MB)})")
        if not self.initrd.exists():
            initramfs.write(self.initrd, {"vmload": build.static_binary("vmload")})
        if self.boot_id is not None:  # a new guest after a crash: new names, new disk
            self.generation += 1
        gen = self.generation
        disk = self._disk(gen)
        if disk is not None:
            self._make_disk(disk, fill=True)
        t0 = time.monotonic()
        g = self.s.start(self._config(gen), name=f"gen{gen}")
        self.boot_id = g.wait_ready(self.o.boot_timeout)
        self.boot_seconds = time.monotonic() - t0
        self.current = g
        self.log(f"guest booted in {self.boot_seconds:.1f} s ({self.accel}), "
                 f"boot id {self.boot_id[:8]}")

    # ---- one point ------------------------------------------------------------------------
    def _start_load(self, g: Guest, rate: float) -> int:
        rc, out = g.run(f"vmload {rate:g} {self.o.wss_mb} {self.o.interval_ms} & echo $!", 30)
        if rc != 0 or not out or not out[-1].strip().isdigit():
            raise GuestError(f"{g.name}: cannot start vmload: {out}")
        return int(out[-1])

    def _set_caps(self, g: Guest) -> None:
        caps = [
            {"capability": "auto-converge", "state": self.o.auto_converge},
            {"capability": "postcopy-ram", "state": self.o.postcopy},
        ]
        g.cmd("migrate-set-capabilities", capabilities=caps)

    def run_point(self, point: Point) -> PointResult:
        assert self.current is not None
        src = self.current
        o = self.o
        pid = self._start_load(src, point.dirty_rate_mb)
        src_start = len(src.data.snapshot())
        self._wait_for_progress(src, src_start)
        time.sleep(o.settle)

        self.generation += 1
        gen = self.generation
        disk = self._disk(gen)
        if disk is not None and o.storage == "block":
            self._make_disk(disk, fill=False)
        block = o.storage == "block"
        dst = self.s.start(self._config(gen), name=f"gen{gen}", incoming=True,
                           paused=block)
        uri = f"unix:{self.s.dir}/mig{gen}.sock"
        self._set_caps(src)
        self._set_caps(dst)
        mirror_seconds = None
        if block:
            mirror_seconds = self._mirror(src, dst, gen, point.bandwidth)
        dst.cmd("migrate-incoming", uri=uri)
        src.cmd("migrate-set-parameters", **{
            "max-bandwidth": point.bandwidth, "downtime-limit": o.downtime_limit_ms,
            **({"max-postcopy-bandwidth": point.bandwidth} if o.postcopy else {}),
        })
        self.log(f"migrating at {fmt_rate(point.bandwidth)}/s, guest dirtying "
                 f"{point.dirty_rate_mb:g} MB/s ...")
        t_start = time.monotonic()
        src.cmd("migrate", uri=uri)
        samples, iterations, info, postcopy_started = self._watch(src, t_start)
        t_end = time.monotonic()
        info = self._end_migration(src, info)
        converged = info.get("status") == "completed"
        source_gone = None
        if block:
            self._end_mirror(src, dst, gen, converged)
        after_guest = dst if converged else src
        after_start = len(after_guest.data.snapshot()) if after_guest is src else 0
        hit, kicks = self._wait_resumed(after_guest, after_start)
        if hit is None:
            return self._crashed_point(point, info, samples, iterations, src, dst, src_start,
                                       after_guest, t_start, t_end, converged, pid)
        t_resumed = hit[1].t
        if converged:  # the source has nothing left to do: quit it, it must be gone
            src_snapshot = src.data.snapshot()[src_start:]
            src.stop()
            source_gone = src.proc is not None and src.proc.poll() is not None
            self.current = dst
        else:
            dst.stop()
        time.sleep(o.settle)
        # proof of continuity: same boot id, counter continues
        boot_id_after = self._boot_id(after_guest)
        after_guest.run(f"kill {pid}", 30)
        if converged:
            src_lines = _progress(src_snapshot, "source")
            dst_lines = _progress(dst.data.snapshot(), "destination")
        else:
            src_lines = _progress(src.data.snapshot()[src_start:], "source")
            dst_lines = []
        return self._analyse(point, info, samples, iterations, src_lines, dst_lines, t_start,
                             t_end, t_resumed, converged, boot_id_after, source_gone,
                             postcopy_started, mirror_seconds, kicks)

    def _wait_for_progress(self, src: Guest, start: int) -> None:
        """The before window: wait until the workload has filled its working set and
        reports."""
        if src.data.wait_for(lambda ln: PROGRESS.match(ln.text) is not None, start,
                             60) is None:
            tail = " | ".join(ln.text for ln in src.data.snapshot()[start:][-3:])
            raise GuestError(f"{src.name}: workload printed no progress in 60 s: {tail}; "
                             f"console: {src.console_tail()}")

    def _end_migration(self, src: Guest, info: dict[str, Any]) -> dict[str, Any]:
        """The final migration status: a migration still going is cancelled (it may finish
        as it is cancelled)."""
        if info.get("status") in ("completed", "failed", "cancelled"):
            return info
        with contextlib.suppress(GuestError):
            src.cmd("migrate_cancel")
        final = self._wait_status(src, ("cancelled", "failed", "completed"), 30)
        if final.get("status") == "completed":  # it finished as we cancelled it
            return final
        return {**info, "status": final.get("status", info.get("status"))}

    def _end_mirror(self, src: Guest, dst: Guest, gen: int, converged: bool) -> None:
        """``--storage block``: complete the disk mirror and resume the destination, or (the
        guest stays) drop the mirror and its NBD connection."""
        job, node = f"mirror{gen}", f"mirror-target{gen}"
        if converged:  # cancel after ready = done, no pivot
            with contextlib.suppress(GuestError):
                src.cmd("block-job-cancel", device=job)
            dst.cmd("block-export-del", id="exp0", mode="hard")
            dst.cmd("nbd-server-stop")
            dst.cmd("cont")
            return
        with contextlib.suppress(GuestError):
            src.cmd("block-job-cancel", device=job, force=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
                j.get("device") == job for j in src.cmd("query-block-jobs")):
            time.sleep(POLL)
        with contextlib.suppress(GuestError):
            src.cmd("blockdev-del", **{"node-name": node})

    def _wait_resumed(self, guest: Guest, start: int
                      ) -> tuple[tuple[int, SerialLine] | None, int]:
        """(the guest's first progress line after ``start``, or None if it crashed or said
        nothing in 60 s; how many times its serial port had to be kicked)."""
        hit = None
        kicks = 0
        deadline = time.monotonic() + 60
        while hit is None and time.monotonic() < deadline:
            hit = guest.data.wait_for(lambda ln: PROGRESS.match(ln.text) is not None,
                                      start, KICK_AFTER)
            if hit is None:  # a stalled 16550 transmitter (see SerialReader.kick)
                if _crashed(guest):
                    break
                kicks += 1
                guest.data.kick()
        return hit, kicks

    def _boot_id(self, guest: Guest) -> str | None:
        for _ in range(3):  # a line can be damaged on the serial port: read it again
            rc, out = guest.run("cat /proc/sys/kernel/random/boot_id", 30)
            ids = [ln.strip() for ln in out if UUID.match(ln.strip())]
            if rc == 0 and ids:
                return ids[-1]
            self.log(f"  boot id unreadable, again (got {out[-3:]})")
        return None

    def _crashed_point(self, point: Point, info: dict[str, Any],
                       samples: list[dict[str, Any]], iterations: list[dict[str, Any]],
                       src: Guest, dst: Guest, src_start: int, after: Guest, t_start: float,
                       t_end: float, converged: bool, pid: int) -> PointResult:
        """The guest did not come back after the move: record why, and end this lineage (the
        next point boots a new guest, with a new boot id)."""
        state = "exited"
        if after.alive():
            with contextlib.suppress(GuestError):
                state = str(after.cmd("query-status").get("status"))
        console = after.console_tail()
        crash = _crash_line(after)
        reason = (f"the guest did not resume on {'the destination' if converged else 'the source'}"
                  f" (QEMU {state}): " + (f"guest kernel crashed: {crash}" if crash
                                          else f"no output for 60 s; console: {console}"))
        self.log(f"  {reason}")
        src_lines = _progress(src.data.snapshot()[src_start:], "source") if src.serial else []
        row = self._analyse(point, info, samples, iterations, src_lines, [], t_start, t_end,
                            t_end, converged, None, None, False, None, 0).row
        row.update(guest_crashed=True, counter_continues=False, same_boot=False,
                   reason=reason, status=f"{info.get('status')}, guest crashed")
        src.stop()
        dst.stop()
        row["source_gone"] = src.proc is not None and src.proc.poll() is not None
        self.current = None
        return PointResult(row=row, iterations=iterations, samples=samples)

    def _mirror(self, src: Guest, dst: Guest, gen: int, bandwidth: int) -> float:
        sock = str(self.s.dir / f"nbd{gen}.sock")
        dst.cmd("nbd-server-start", addr={"type": "unix", "data": {"path": sock}})
        dst.cmd("block-export-add", type="nbd", id="exp0", **{"node-name": "disk0"},
                name="disk0", writable=True)
        job, node = f"mirror{gen}", f"mirror-target{gen}"
        src.cmd("blockdev-add", driver="nbd", **{"node-name": node},
                server={"type": "unix", "path": sock}, export="disk0")
        t0 = time.monotonic()
        src.cmd("blockdev-mirror", **{"job-id": job}, device="disk0",
                target=node, sync="full",
                **({"speed": bandwidth} if bandwidth < UNLIMITED else {}))
        deadline = t0 + max(self.o.timeout, 30.0)
        while time.monotonic() < deadline:
            jobs = src.cmd("query-block-jobs")
            state = next((j for j in jobs if j.get("device") == job), None)
            if state is None:
                raise GuestError("block mirror job vanished before it was ready")
            if state.get("ready"):
                return time.monotonic() - t0
            time.sleep(POLL)
        raise GuestError(f"block mirror of {self.o.disk_mb} MB not ready in "
                         f"{deadline - t0:.0f} s")

    def _wait_status(self, g: Guest, wanted: tuple[str, ...], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        info: dict[str, Any] = {}
        while time.monotonic() < deadline:
            info = g.cmd("query-migrate")
            if info.get("status") in wanted:
                return info
            time.sleep(POLL)
        return info

    def _watch(self, src: Guest, t_start: float
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any], bool]:
        samples: list[dict[str, Any]] = []
        iterations: list[dict[str, Any]] = []
        last_sync = 0
        postcopy_started = False
        while True:
            info: dict[str, Any] = src.cmd("query-migrate")
            t = time.monotonic() - t_start
            status = info.get("status", "?")
            ram = info.get("ram", {})
            sample = {
                "t": round(t, 3), "status": status,
                "transferred_mb": _mb(ram.get("transferred")),
                "remaining_mb": _mb(ram.get("remaining")),
                "dirty_pages_rate": ram.get("dirty-pages-rate"),
                "mbps": ram.get("mbps"),
                "iteration": ram.get("dirty-sync-count"),
                "throttle_pct": info.get("cpu-throttle-percentage"),
                "expected_downtime_ms": info.get("expected-downtime"),
            }
            samples.append(sample)
            sync = int(ram.get("dirty-sync-count") or 0)
            if sync != last_sync:
                iterations.append({
                    "iteration": sync, "t": sample["t"],
                    "transferred_mb": sample["transferred_mb"],
                    "remaining_mb": sample["remaining_mb"],
                    "dirty_pages_rate": sample["dirty_pages_rate"],
                    "throttle_pct": sample["throttle_pct"],
                })
                last_sync = sync
            if status in ("completed", "failed", "cancelled"):
                return samples, iterations, info, postcopy_started
            if (self.o.postcopy and not postcopy_started and status == "active"
                    and sync > self.o.postcopy_after):
                src.cmd("migrate-start-postcopy")
                postcopy_started = True
                self.log(f"  switching to post-copy after {sync - 1} iterations")
            if t > self.o.timeout and status not in ("postcopy-active", "device"):
                return samples, iterations, info, postcopy_started
            time.sleep(POLL)

    # ---- analysis -------------------------------------------------------------------------
    def _continuity(self, src_lines: list[ProgressSample], dst_lines: list[ProgressSample],
                    t_start: float, t_end: float, t_resumed: float, converged: bool,
                    continuous: bool
                    ) -> tuple[float | None, float | None, float | None, int, bool]:
        """(throughput during, after; the switch-over gap; lines replayed; whether the
        guest's counter continues) of one migration."""
        o = self.o
        nonces = {s.nonce for s in src_lines + dst_lines}
        if converged:
            last_src = max((s.t for s in src_lines if s.t <= t_end), default=t_start)
            during = _rate(src_lines, t_start, last_src)
            after = _rate(dst_lines, t_resumed, t_resumed + o.settle + 1)
            switch_gap = (dst_lines[0].t - last_src) if dst_lines else None
            # The serial port may re-send the last lines buffered at the switch-over (the
            # migrated UART/tty state): the destination's counter must pick up within the
            # source's last lines, never from 0 (a restart) and never skip ahead.
            last = max(s.seq for s in src_lines) if src_lines else -1
            first = dst_lines[0].seq if dst_lines else -1
            replayed = max(0, last - first + 1) if dst_lines else 0
            counter_continues = (
                bool(dst_lines) and bool(src_lines) and len(nonces) == 1
                and src_lines[0].seq < first <= last + 2
                and all(b.seq > a.seq for a, b in itertools.pairwise(dst_lines))
            )
        else:
            during = _rate(src_lines, t_start, t_end)
            after = _rate(src_lines, t_end, t_end + o.settle + 1)
            switch_gap = None
            counter_continues = continuous
            replayed = 0
        return during, after, switch_gap, replayed, counter_continues

    def _explain_non_convergence(self, row: dict[str, Any], point: Point) -> None:
        """``row["non_convergence"]`` and ``row["reason"]``: why the migration did not end."""
        o = self.o
        # The guest's own write rate decides: it rewrites its working set round-robin, so at
        # a rate >= the bandwidth every page is dirty again before it can be sent. QEMU's
        # dirty-pages-rate counts distinct pages per dirty-bitmap sync, which a pass of
        # wss/bandwidth seconds caps near the bandwidth in exactly that case (seen: 1.98 to
        # 14.5 MB/s at 16M/s while the guest wrote 64 MB/s), so it is the fallback only.
        dirty = row["dirty_mb_s_guest"] or row["dirty_mb_s_qemu"] or 0.0
        bw_mb = point.bandwidth / MiB
        if dirty >= 0.9 * bw_mb:
            why = (f"the guest dirties {dirty:g} MB/s, as fast as or faster than "
                   f"{fmt_rate(point.bandwidth)}/s can send: it cannot converge")
            row["non_convergence"] = "dirty rate >= bandwidth"
        else:
            why = (f"still iterating ({dirty:g} MB/s dirtied < {bw_mb:g} MB/s): "
                   "a longer --timeout may let it finish")
            row["non_convergence"] = "timeout"
        row["reason"] = (
            f"not converged in {o.timeout:g} s: {row['iterations']} iterations, "
            f"{row['remaining_mb']} MB still to send; {why}"
        )

    def _analyse(self, point: Point, info: dict[str, Any], samples: list[dict[str, Any]],
                 iterations: list[dict[str, Any]], src_lines: list[ProgressSample],
                 dst_lines: list[ProgressSample], t_start: float, t_end: float,
                 t_resumed: float, converged: bool, boot_id_after: str | None,
                 source_gone: bool | None, postcopy: bool, mirror_seconds: float | None,
                 kicks: int = 0) -> PointResult:
        o = self.o
        ram = info.get("ram", {})
        all_lines = src_lines + dst_lines
        nonces = {s.nonce for s in all_lines}
        seqs = [s.seq for s in all_lines]
        continuous = len(nonces) == 1 and all(b > a for a, b in itertools.pairwise(seqs))
        before = _rate(src_lines, t_start - o.settle, t_start)
        during, after, switch_gap, replayed, counter_continues = self._continuity(
            src_lines, dst_lines, t_start, t_end, t_resumed, converged, continuous)
        window = [s for s in all_lines if t_start - 1 <= s.t <= t_resumed + 1]
        gaps = [b.t - a.t for a, b in itertools.pairwise(window)]
        max_gap = max(gaps, default=None)
        guest_downtime_ms = None
        if converged and switch_gap is not None:
            guest_downtime_ms = round(max(0.0, switch_gap - o.interval_ms / 1000) * 1000, 1)
        dirty_pages_rate = [s["dirty_pages_rate"] for s in samples if s.get("dirty_pages_rate")]
        guest_dirty = None
        if len(src_lines) >= 2:
            a, b = src_lines[0], src_lines[-1]
            if b.t > a.t:
                guest_dirty = (b.dirtied - a.dirtied) * 4096 / MiB / (b.t - a.t)
        total_ms = info.get("total-time") if converged else None
        row: dict[str, Any] = {
            "point": f"{fmt_rate(point.bandwidth)}/s @ {point.dirty_rate_mb:g} MB/s",
            "bandwidth": fmt_rate(point.bandwidth),
            "bandwidth_bytes_per_s": point.bandwidth if point.bandwidth < UNLIMITED else None,
            "dirty_rate_mb_s": point.dirty_rate_mb,
            "storage": o.storage,
            "status": info.get("status"),
            "converged": converged,
            "postcopy": postcopy,
            "total_time_s": round(total_ms / 1000, 3) if total_ms is not None
            else round(t_end - t_start, 3),
            "downtime_ms": info.get("downtime") if converged else None,
            "guest_downtime_ms": guest_downtime_ms,
            "guest_max_gap_ms": round(max_gap * 1000, 1) if max_gap is not None else None,
            "setup_time_ms": info.get("setup-time"),
            "iterations": int(ram.get("dirty-sync-count") or (iterations[-1]["iteration"]
                                                               if iterations else 0)),
            "transferred_mb": _mb(ram.get("transferred")),
            "remaining_mb": _mb(ram.get("remaining")),
            "ram_total_mb": _mb(ram.get("total")),
            "duplicate_pages": ram.get("duplicate"),
            "normal_pages": ram.get("normal"),
            "dirty_pages_rate_max": max(dirty_pages_rate, default=None),
            "dirty_mb_s_qemu": round(max(dirty_pages_rate) * 4096 / MiB, 2)
            if dirty_pages_rate else None,
            "dirty_mb_s_guest": round(guest_dirty, 2) if guest_dirty is not None else None,
            "throttle_pct_max": max((s["throttle_pct"] or 0 for s in samples), default=0),
            "mirror_s": round(mirror_seconds, 3) if mirror_seconds is not None else None,
            "throughput_before": round(before, 1) if before else None,
            "throughput_during": round(during, 1) if during else None,
            "throughput_after": round(after, 1) if after else None,
            "slowdown_during": round(1 - during / before, 3) if before and during else None,
            "counter_continues": counter_continues,
            "same_boot": boot_id_after == self.boot_id,
            "source_gone": source_gone,
            "first_seq_after": dst_lines[0].seq if dst_lines else None,
            "last_seq_before": max((s.seq for s in src_lines), default=None),
            "replayed_lines": replayed,
            "serial_kicks": kicks,
            "guest_crashed": False,
        }
        if kicks:
            row["note"] = (f"the guest's serial output stalled after the switch-over and was "
                           f"resumed by {kicks} kick(s) of {KICK_AFTER:g} s: guest_downtime_ms "
                           "includes that stall")
        if not converged:
            self._explain_non_convergence(row, point)
        return PointResult(row=row, iterations=iterations, samples=samples)
