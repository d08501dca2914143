"""One QEMU guest process, driven over QMP, talking over its second serial port.

A ``Guest`` is started paused (``-S``) with a QMP unix socket and two serial ports: ttyS0 (the
kernel console) goes to ``<name>.console.log`` for diagnostics, ttyS1 (the data port) to a unix
socket the host reads in a thread, timestamping every line with the host's monotonic clock as
it arrives, and ttyS2 (the control port) to a socket the host writes commands to. That
timestamp is what lets a migration see the guest's own progress gap.

Every process is started with ``PR_SET_PDEATHSIG`` (it dies if virtbench is killed outright:
:mod:`virtbench.childproc`) and stopped by ``Guest.stop()``, which ``VMSession`` calls on
success, failure, Ctrl-C and SIGTERM (the CLI turns SIGTERM into ``KeyboardInterrupt``).
``VMSession`` also removes its temporary directory (sockets, logs, initramfs, disk images).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from virtbench import childproc
from virtbench.errors import EnvironmentUnsupported, VirtbenchError
from virtbench.vm.initramfs import DONE, POWEROFF, READY, frame

QEMU_ENV = "VIRTBENCH_QEMU"
NUDGE_AFTER = 3.0
_COMMAND_IDS = itertools.count(int(time.time()) % 100000 * 1000)
"""Command ids, unique per virtbench process: a guest that migrates keeps the agent's memory
of the last id it ran, so a new QEMU object must never restart the numbering."""


class GuestError(VirtbenchError):
    """A guest failed to start, answer or migrate (the message says which and why)."""

    exit_code = 4


def find_qemu() -> Path:
    given = os.environ.get(QEMU_ENV)
    if given:
        if not os.access(given, os.X_OK):
            raise EnvironmentUnsupported(f"${QEMU_ENV}={given}: not an executable")
        return Path(given)
    for name in ("qemu-system-x86_64", "/usr/libexec/qemu-kvm", "/usr/bin/qemu-kvm"):
        path = shutil.which(name)
        if path:
            return Path(path)
    raise EnvironmentUnsupported(
        "QEMU not found: install it (Debian: apt-get install qemu-system-x86) "
        f"or set ${QEMU_ENV} to a qemu-system-x86_64 binary"
    )


def qemu_version(qemu: Path) -> str:
    try:
        out = subprocess.run(
            [str(qemu), "--version"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    first = out.splitlines()[0] if out else "unknown"
    return first.removeprefix("QEMU emulator version ").strip()


@dataclass
class GuestConfig:
    kernel: Path
    initrd: Path
    accel: str = "tcg"
    """``kvm`` or ``tcg`` (see ``virtbench.vm.accel``)."""
    vcpus: int = 1
    memory_mb: int = 128
    cpu: str | None = None
    """QEMU ``-cpu`` model; default ``host`` under KVM, ``qemu64`` under TCG."""
    machine: str = "pc"
    append: str = ""
    disk: Path | None = None
    """A raw disk image attached as the guest's first disk (node name ``disk0``)."""
    pin: list[int] | None = None
    """Host CPUs the vCPU threads are pinned to, round-robin (``None``: not pinned)."""
    extra_args: list[str] = field(default_factory=list)

    @property
    def cpu_model(self) -> str:
        return self.cpu or ("host" if self.accel == "kvm" else "qemu64")


@dataclass
class SerialLine:
    t: float
    """Host ``time.monotonic()`` when the line arrived."""
    text: str


class SerialReader:
    """Reads the data port's unix socket in a thread (lines kept with their arrival times);
    sends commands on the control port's socket."""

    def __init__(self, path: Path, ctl_path: Path, name: str) -> None:
        self.name = name
        self.lines: list[SerialLine] = []
        self._cond = threading.Condition()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(str(path))
        self._ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._ctl.connect(str(ctl_path))
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"serial-{name}", daemon=True)
        childproc.start_thread(self._thread)  # a Ctrl-C always goes to the main thread

    def _loop(self) -> None:
        pending = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                chunk = b""
            t = time.monotonic()
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            if complete:
                with self._cond:
                    for raw in complete:
                        text = raw.decode("utf-8", "replace").rstrip("\r")
                        self.lines.append(SerialLine(t, text))
                    self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def send(self, line: str) -> None:
        self._ctl.sendall(line.encode() + b"\n")

    def kick(self) -> None:
        """Wake a guest that went quiet: a byte *into* the data port and an empty line on the
        control port (both ignored by the agent). After a migration under TCG a guest was
        seen idle in HLT with its APIC timer never firing and the data port's IRQ masked;
        the control port's interrupt (IRQ 4) wakes it and it carries on."""
        with contextlib.suppress(OSError):
            self._sock.sendall(b"\n")
        with contextlib.suppress(OSError):
            self._ctl.sendall(b"\n")

    def wait_for(
        self, predicate: Callable[[SerialLine], bool], start: int, timeout: float
    ) -> tuple[int, SerialLine] | None:
        """First line at index >= ``start`` satisfying ``predicate``, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.lines):
                    if predicate(self.lines[i]):
                        return i, self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return None
                self._cond.wait(left)

    def snapshot(self) -> list[SerialLine]:
        with self._cond:
            return list(self.lines)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._ctl.close()
        self._thread.join(timeout=5)


class Guest:
    """One QEMU process. Use inside a ``VMSession`` (which stops it whatever happens)."""

    def __init__(
        self, config: GuestConfig, workdir: Path, name: str = "guest", incoming: bool = False,
        paused: bool = False,
    ) -> None:
        """``incoming``: wait for a migration (``-incoming defer``); the guest then runs as soon
        as the migration completes unless ``paused`` (then it waits for QMP ``cont``)."""
        self.config = config
        self.paused = paused
        self.workdir = workdir
        self.name = name
        self.incoming = incoming
        self.qmp_path = workdir / f"{name}.qmp"
        self.data_path = workdir / f"{name}.data"
        self.ctl_path = workdir / f"{name}.ctl"
        self.console_path = workdir / f"{name}.console.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.qmp: Any = None
        self.serial: SerialReader | None = None
        self.boot_id: str | None = None
        self.booted_at: float | None = None
        self.started_at: float | None = None
        self.nudges = 0
        """Times a command or its output had to be pushed through a serial port (``run``)."""

    # ---- life cycle ---------------------------------------------------------------------
    def command_line(self, qemu: Path) -> list[str]:
        c = self.config
        accel = "kvm" if c.accel == "kvm" else "tcg"
        append = f"console=ttyS0 quiet panic=-1 {c.append}".strip()
        args = [
            str(qemu), "-name", self.name, "-machine", f"{c.machine},accel={accel}",
            "-cpu", c.cpu_model, "-smp", str(c.vcpus), "-m", str(c.memory_mb),
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", str(c.kernel), "-initrd", str(c.initrd), "-append", append,
            "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
            "-chardev", f"file,id=console,path={self.console_path}",
            "-serial", "chardev:console",
            "-chardev", f"socket,id=data,path={self.data_path},server=on,wait=off",
            "-serial", "chardev:data",
            "-chardev", f"socket,id=ctl,path={self.ctl_path},server=on,wait=off",
            "-serial", "chardev:ctl",
        ]  # fmt: skip
        if c.disk is not None:
            args += [
                "-blockdev", f"driver=file,filename={c.disk},node-name=disk0-file",
                "-blockdev", "driver=raw,file=disk0-file,node-name=disk0",
                "-device", "virtio-blk-pci,drive=disk0,id=vdisk0",
            ]  # fmt: skip
        if self.incoming:
            args += ["-incoming", "defer"]
        if self.paused or not self.incoming:
            args.append("-S")  # started by ``cont`` once QMP and the data port are connected
        return args + list(c.extra_args)

    def start(self, qemu: Path, timeout: float = 20.0) -> None:
        from qemu.qmp.legacy import QEMUMonitorProtocol

        stderr_path = self.workdir / f"{self.name}.stderr"
        with stderr_path.open("wb") as err:
            # SIGKILL if virtbench dies (vbexec, no Python in the child); a group of its
            # own, so a terminal's Ctrl-C goes to virtbench only, which stops QEMU itself.
            self.proc = childproc.popen(
                self.command_line(qemu), death_signal=signal.SIGKILL, stdin=subprocess.DEVNULL,
                stdout=err, stderr=err, process_group=0,
            )  # fmt: skip
        self.started_at = time.monotonic()
        deadline = self.started_at + timeout
        while not (self.qmp_path.exists() and self.data_path.exists()
                   and self.ctl_path.exists()):
            if self.proc.poll() is not None:
                raise GuestError(f"{self.name}: QEMU exited at start: {self.stderr_tail()}")
            if time.monotonic() > deadline:
                raise GuestError(f"{self.name}: QEMU did not open its sockets in {timeout:.0f} s")
            time.sleep(0.02)
        qmp = QEMUMonitorProtocol(str(self.qmp_path))
        try:
            qmp.connect()
        except Exception as exc:  # ConnectError, EOFError, OSError: QEMU died while starting
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)
            raise GuestError(
                f"{self.name}: QEMU exited at start: {self.stderr_tail()}"
                if self.proc.poll() is not None
                else f"{self.name}: cannot connect to QMP: {exc}"
            ) from None
        qmp.settimeout(60.0)
        self.qmp = qmp
        self.serial = SerialReader(self.data_path, self.ctl_path, self.name)
        if self.config.pin:
            self.pin_vcpus(self.config.pin)
        if not self.incoming:
            self.cmd("cont")

    def cmd(self, name: str, /, **args: Any) -> Any:
        """Execute a QMP command; a QMP error becomes a ``GuestError`` naming the command."""
        from qemu.qmp import QMPError

        if self.qmp is None:
            raise GuestError(f"{self.name}: not started")
        try:
            return self.qmp.cmd(name, **args)
        except QMPError as exc:
            raise GuestError(f"{self.name}: QMP {name} failed: {exc}") from None
        except (OSError, TimeoutError, EOFError) as exc:
            raise GuestError(f"{self.name}: QMP {name}: connection lost ({exc!r})") from None

    def pin_vcpus(self, cpus: list[int]) -> None:
        threads = self.cmd("query-cpus-fast")
        for i, vcpu in enumerate(threads):
            tid = int(vcpu["thread-id"])
            try:
                os.sched_setaffinity(tid, {cpus[i % len(cpus)]})
            except OSError as exc:
                raise GuestError(f"{self.name}: cannot pin vCPU {i} to CPU {cpus[i % len(cpus)]}:"
                                 f" {exc}") from None

    @property
    def data(self) -> SerialReader:
        """The data port (ttyS1) reader; raises if the guest is not running."""
        if self.serial is None:
            raise GuestError(f"{self.name}: not running")
        return self.serial

    def wait_ready(self, timeout: float) -> str:
        """Wait for the guest's agent to say it is up; returns its kernel boot id."""
        assert self.serial is not None
        hit = self.serial.wait_for(lambda ln: ln.text.startswith(READY), 0, timeout)
        if hit is None:
            state = "exited" if not self.alive() else "still running"
            raise GuestError(
                f"{self.name}: guest did not boot within {timeout:.0f} s (QEMU {state}, "
                f"accel {self.config.accel}); console: {self.console_tail()}"
            )
        self.booted_at = hit[1].t
        self.boot_id = hit[1].text.split()[-1]
        return self.boot_id

    def run(self, command: str, timeout: float) -> tuple[int, list[str]]:
        """Run a shell command in the guest; returns (exit status, output lines).

        The line carries an id and a checksum (``initramfs.frame``): a damaged line is
        answered NAK and sent again; silence for ``NUDGE_AFTER`` seconds gets an empty line
        on the control port (pushes a stuck tail through; noise to the agent), a kick on the
        data port (restarts a stalled transmitter) and, the second time, the line again (the
        agent runs an id once and repeats its status)."""
        serial = self.data
        cid = next(_COMMAND_IDS)
        line = frame(cid, command)
        start = len(serial.snapshot())
        done, nak = f"{DONE} {cid} ", f"@@VB NAK {cid}"
        serial.send(line)
        deadline = time.monotonic() + timeout
        pos = start
        quiet = 0
        while time.monotonic() < deadline:
            wait = min(NUDGE_AFTER, max(0.0, deadline - time.monotonic()))
            hit = serial.wait_for(lambda ln: ln.text.startswith((done, nak)), pos, wait)
            if hit is not None and hit[1].text.startswith(done):
                out = [ln.text for ln in serial.snapshot()[start : hit[0]]]
                out = [t for t in out if not t.startswith(("@@VB NAK", DONE))]
                return int(hit[1].text.split()[-1]), out
            self.nudges += 1
            if hit is not None:  # NAK: damaged on the way, send again
                pos = hit[0] + 1
                serial.send(line)
                continue
            quiet += 1
            serial.kick()
            if quiet % 2 == 0:
                serial.send(line)
        raise GuestError(f"{self.name}: command did not finish within {timeout:.0f} s: "
                         f"{command[:60]}")

    def send(self, line: str) -> None:
        assert self.serial is not None
        self.serial.send(line)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr_tail(self) -> str:
        with contextlib.suppress(OSError):
            text = (self.workdir / f"{self.name}.stderr").read_text(errors="replace").strip()
            return text.splitlines()[-1] if text else "(no message)"
        return "(no message)"

    def console_tail(self) -> str:
        with contextlib.suppress(OSError):
            lines = self.console_path.read_text(errors="replace").strip().splitlines()
            return " | ".join(lines[-3:]) if lines else "(empty)"
        return "(empty)"

    def stop(self, grace: float = 3.0) -> None:
        """Stop QEMU (QMP quit, then SIGTERM, then SIGKILL) and close the channels."""
        if self.qmp is not None and self.alive():
            with contextlib.suppress(Exception):
                self.qmp.settimeout(2.0)
                self.qmp.cmd("quit")
        if self.proc is not None:
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self.qmp is not None:
            with contextlib.suppress(Exception):
                self.qmp.close()
            self.qmp = None
        if self.serial is not None:
            self.serial.close()
            self.serial = None

    def poweroff(self, timeout: float = 10.0) -> None:
        if self.serial is not None and self.alive():
            with contextlib.suppress(OSError):
                self.serial.send(POWEROFF)
            if self.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=timeout)
        self.stop()


class VMSession:
    """A temporary directory and the guests started in it, all removed on exit.

    >>> with VMSession() as s:                                    # doctest: +SKIP
    ...     g = s.start(GuestConfig(kernel, initrd), name="g0")
    ...     g.wait_ready(60)
    """

    def __init__(self, prefix: str = "virtbench-vm-") -> None:
        self._prefix = prefix
        self._dir: Path | None = None
        self.guests: list[Guest] = []
        self._qemu: Path | None = None

    @property
    def dir(self) -> Path:
        """The session's directory, made on first use and registered with the running
        document (``lifecycle.track``), so the next virtbench removes it if this one is
        killed outright. Made lazily: an experiment prepares its session before it opens
        its document, and a directory made then would be nobody's to remove."""
        if self._dir is None:
            from virtbench.runner.lifecycle import new_workdir

            self._dir = new_workdir(self._prefix)
        return self._dir

    @property
    def qemu(self) -> Path:
        if self._qemu is None:
            self._qemu = find_qemu()
        return self._qemu

    def start(
        self, config: GuestConfig, name: str, incoming: bool = False, paused: bool = False
    ) -> Guest:
        guest = Guest(config, self.dir, name=name, incoming=incoming, paused=paused)
        self.guests.append(guest)
        guest.start(self.qemu)
        return guest

    def close(self) -> None:
        # Ctrl-C arriving during cleanup must not leave a QEMU behind: finish the loop first.
        old = signal.getsignal(signal.SIGINT)
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for g in reversed(self.guests):
                with contextlib.suppress(Exception):
                    g.stop()
            if self._dir is not None:
                from virtbench.runner.lifecycle import remove_workdir

                remove_workdir(self._dir)
        finally:
            with contextlib.suppress(ValueError, TypeError):
                signal.signal(signal.SIGINT, old)

    def __enter__(self) -> VMSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()


@contextlib.contextmanager
def session(prefix: str = "virtbench-vm-") -> Iterator[VMSession]:
    s = VMSession(prefix)
    try:
        yield s
    finally:
        s.close()
