"""Building blocks shared by every probe.

* :class:`Root` reads files *relative to an injectable root* (``/`` for the live system, or a
  captured tree for ``virtbench detect --root DIR``). Missing files are simply absent; files
  that exist but cannot be read are recorded in ``Root.unreadable`` so the report can say so
  and lower its confidence.
* :class:`Clue` is one piece of evidence that points at a layer (a hypervisor, a container).
* :class:`Probe` is the interface each probe implements: ``available()``, ``collect()`` and
  ``advice()``; :class:`Context` is what probes share (the root, the kernel log, cpuinfo...).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from virtbench.probes.klog import (
    OFFLINE_LOGS,
    LogLine,
    LogText,
    parse_log,
    read_kmsg,
    read_latest_boot,
)

__all__ = ["OFFLINE_LOGS", "LogLine", "parse_log", "read_kmsg"]

# Files in /proc and /sys report size 0 or 4096; read at most this much of any one file.
MAX_READ = 4 * 1024 * 1024
# Directories are listed up to this many entries (/sys/block, /sys/bus/*/drivers, ...).
MAX_ENTRIES = 4096
# Evidence lines are shown to people: keep them to one screen line.
MAX_EVIDENCE = 240

_ABSENT = {errno.ENOENT, errno.ENOTDIR, errno.ENXIO, errno.ENODEV}


def printable(text: str) -> str:
    """``text`` with every control character escaped (``\\x1b``): a captured tree must not
    write terminal escape sequences through a report."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def clip(text: str, limit: int = MAX_EVIDENCE) -> str:
    text = text.strip().replace("\t", " ").replace("\r", " ").replace("\n", " ")
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return printable(text)


# A layer name taken from a file (a /sys/hypervisor/type, a container= value, a log line's
# word) is kept only if it looks like a name; anything else is an unidentified one.
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._+-]{0,31}")


def layer_name(kind: str, name: str) -> str:
    """``name`` if it is a plausible layer name, else ``unknown`` (a hypervisor) or
    ``generic`` (a container)."""
    if kind not in ("hypervisor", "container") or _NAME_RE.fullmatch(name):
        return name
    return "generic" if kind == "container" else "unknown"


def excerpt(prefix: str, line: str, start: int, end: int, limit: int = MAX_EVIDENCE) -> str:
    """``prefix + line``, shortened around ``line[start:end]`` (the part that decided)."""
    if len(prefix) + len(line) <= limit:
        return prefix + line
    room = max(40, limit - len(prefix) - (end - start) - 8)
    a = max(0, start - room // 2)
    b = min(len(line), end + room // 2)
    return prefix + ("..." if a else "") + line[a:b] + ("..." if b < len(line) else "")


_MAX_LINKS = 40  # as the kernel (MAXSYMLINKS)

_KINDS = (
    (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
)


def _not_regular(mode: int) -> str:
    kind = next((k for test, k in _KINDS if test(mode)), "not a regular file")
    return f"{kind}, not read" if kind.startswith("a ") else kind


class Root:
    """Read-only view of a file tree rooted at ``path`` (``/`` means the live system).

    Every read is hostile-proof: only regular files are opened (non-blocking, checked with
    ``fstat`` after opening, so a FIFO or a device in a captured tree cannot hang or touch
    hardware), reads are bounded, and in a captured tree every symbolic link is resolved
    *inside the tree* as if it were the root directory (an absolute link ``/proc/x`` means
    ``DIR/proc/x``, ``..`` stops at ``DIR``), so a snapshot can never describe the machine
    that reads it. Loops and anything that is not a regular file are listed as unreadable.
    """

    def __init__(self, path: Path | str = "/") -> None:
        self.path = Path(path)
        self.live = self.path.resolve() == Path("/")
        self._base = "/" if self.live else os.path.realpath(self.path)
        self.unreadable: list[str] = []
        self._cache: dict[str, bytes | None] = {}

    def p(self, rel: str) -> Path:
        """The path of ``rel`` (a live path such as ``/proc/cpuinfo``) under this root,
        before resolving links (see :meth:`real`)."""
        return self.path / rel.lstrip("/")

    def real(self, rel: str, follow: bool = True) -> str:
        """The real path of ``rel`` with every link resolved inside the tree (the last
        component too when ``follow``). Raises ``OSError`` (``ELOOP`` for loops)."""
        if "\x00" in rel:
            raise OSError(errno.ENOENT, "NUL in path")
        if self.live:
            return "/" + rel.lstrip("/")
        todo = [c for c in reversed(rel.split("/")) if c and c != "."]
        done: list[str] = []
        hops = 0
        while todo:
            name = todo.pop()
            if name == "..":
                if done:
                    done.pop()
                continue
            cur = os.path.join(self._base, *done, name)
            st = os.lstat(cur)
            if stat.S_ISLNK(st.st_mode) and (follow or todo):
                hops += 1
                if hops > _MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                target = os.readlink(cur)
                if target.startswith("/"):
                    done = []
                todo.extend(c for c in reversed(target.split("/")) if c and c != ".")
                continue
            done.append(name)
        return os.path.join(self._base, *done)

    def note_unreadable(self, rel: str, reason: str) -> None:
        entry = f"{rel}: {reason}"
        if entry not in self.unreadable:
            self.unreadable.append(entry)

    def _oserror(self, rel: str, exc: OSError) -> None:
        if exc.errno in _ABSENT:
            return
        self.note_unreadable(rel, exc.strerror or type(exc).__name__)

    def open_regular(self, rel: str) -> tuple[int, int] | None:
        """(fd, size) of the regular file ``rel``, opened without blocking; ``None`` when
        absent, a directory, or not readable (the last two kinds are noted). Close the fd."""
        try:
            real = self.real(rel)
            if not self.live:
                st = os.lstat(real)  # never open a FIFO or device, not even non-blocking
                if stat.S_ISDIR(st.st_mode):
                    return None
                if not stat.S_ISREG(st.st_mode):
                    self.note_unreadable(rel, _not_regular(st.st_mode))
                    return None
            flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(real, flags if self.live else flags | os.O_NOFOLLOW)
        except IsADirectoryError:
            return None
        except OSError as exc:
            self._oserror(rel, exc)
            return None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            if not stat.S_ISDIR(st.st_mode):
                self.note_unreadable(rel, _not_regular(st.st_mode))
            return None
        return fd, st.st_size

    def read_bytes(self, rel: str, limit: int = MAX_READ) -> bytes | None:
        if rel in self._cache:
            return self._cache[rel]
        data: bytes | None = None
        opened = self.open_regular(rel)
        if opened is not None:
            fd = opened[0]
            try:
                # Small reads: sysctl files fail with ENOMEM on a multi-megabyte read().
                chunks: list[bytes] = []
                total = 0
                while total < limit:
                    chunk = os.read(fd, min(65536, limit - total))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
                data = b"".join(chunks)
            except OSError as exc:
                self._oserror(rel, exc)
            finally:
                os.close(fd)
        self._cache[rel] = data
        return data

    def read_log(self, rel: str) -> LogText | None:
        """The latest boot of the kernel log ``rel`` (bounded, see klog.read_latest_boot)."""
        opened = self.open_regular(rel)
        if opened is None:
            return None
        fd, size = opened
        try:
            return read_latest_boot(fd, size)
        except OSError as exc:
            self._oserror(rel, exc)
            return None
        finally:
            os.close(fd)

    def read(self, rel: str, limit: int = MAX_READ) -> str | None:
        """The text of ``rel``, or ``None`` when absent or unreadable (the latter is noted)."""
        data = self.read_bytes(rel, limit)
        if data is None:
            return None
        return data.decode("utf-8", errors="replace")

    def read_line(self, rel: str) -> str | None:
        """The first line of ``rel``, stripped (``None`` when absent, unreadable or empty)."""
        text = self.read(rel, 65536)
        if text is None:
            return None
        text = text.replace("\x00", "").strip()
        return text.splitlines()[0].strip() if text else None

    def lines(self, rel: str) -> list[str]:
        text = self.read(rel)
        return text.splitlines() if text else []

    def exists(self, rel: str) -> bool:
        try:
            os.lstat(self.real(rel, follow=False))
        except OSError as exc:
            if exc.errno not in _ABSENT:
                self._oserror(rel, exc)
            return False
        return True

    def is_dir(self, rel: str) -> bool:
        try:
            return stat.S_ISDIR(os.stat(self.real(rel)).st_mode)
        except OSError:
            return False

    def listdir(self, rel: str) -> list[str]:
        """The names in directory ``rel`` (at most MAX_ENTRIES; more are noted)."""
        names: list[str] = []
        try:
            with os.scandir(self.real(rel)) as it:
                for entry in it:
                    if len(names) >= MAX_ENTRIES:
                        self.note_unreadable(rel, f"more than {MAX_ENTRIES} entries: the "
                                             "rest not read")
                        break
                    names.append(entry.name)
        except OSError as exc:
            self._oserror(rel, exc)
        return sorted(names)

    def readlink(self, rel: str) -> str | None:
        try:
            return os.readlink(self.real(rel, follow=False))
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not a link
                self._oserror(rel, exc)
            return None


@dataclass
class Clue:
    """One piece of evidence pointing at a layer.

    ``kind`` is ``hypervisor``, ``container``, ``not-hypervisor`` (evidence for bare metal),
    ``role`` (e.g. xen dom0) or ``device`` (a PV driver or an emulated device).
    ``weight`` is how sure this single clue is on its own (0..1).
    """

    kind: str
    name: str
    evidence: str
    weight: float
    variant: str | None = None


@dataclass
class ProbeResult:
    clues: list[Clue] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def clue(
        self, kind: str, name: str, evidence: str, weight: float, variant: str | None = None
    ) -> None:
        self.clues.append(Clue(kind, layer_name(kind, name), clip(evidence), weight, variant))


class Context:
    """What probes share: the root, and lazily parsed common sources."""

    def __init__(self, root: Root, *, steal_sample_s: float = 0.0, test_dir: str | None = None):
        self.root = root
        self.steal_sample_s = steal_sample_s
        self.test_dir = test_dir
        self._log: tuple[str, list[LogLine]] | None = None
        self._cpuinfo: list[dict[str, str]] | None = None
        self.log_skipped: list[str] = []
        self.facts: dict[str, Any] = {}

    # ---- kernel log -------------------------------------------------------------------------
    def kernel_log(self) -> tuple[str, list[LogLine]]:
        """(source, lines) of the kernel log; source is ``""`` when none was readable. Of a
        log with several boots only the latest is read; ``log_skipped`` says what was not."""
        if self._log is None:
            self._log = self._read_kernel_log()
        return self._log

    def _log_file(self, rel: str) -> str | None:
        got = self.root.read_log(rel)
        if got is None or not got.text.strip():
            return None
        self.log_skipped = got.skipped
        return got.text

    def _read_kernel_log(self) -> tuple[str, list[LogLine]]:
        root = self.root
        if not root.live:
            for rel in OFFLINE_LOGS:
                text = self._log_file(rel)
                if text:
                    # Files the capture added are shown without the leading '/'.
                    shown = rel if rel.startswith("/var/") else rel.lstrip("/")
                    return shown, parse_log(text)
            root.note_unreadable("/dmesg.txt", "no kernel log captured")
            return "", []
        kmsg = read_kmsg()
        if isinstance(kmsg, str):
            return "/dev/kmsg", parse_log(kmsg)
        reason = kmsg[1]
        for rel in ("/var/log/dmesg", "/var/log/boot.msg", "/var/log/kern.log"):
            content = self._log_file(rel)
            if content:
                root.note_unreadable("/dev/kmsg", f"{reason} (used {rel} instead)")
                return rel, parse_log(content)
        root.note_unreadable("/dev/kmsg", f"{reason} (kernel log unavailable)")
        return "", []

    # ---- cpuinfo ------------------------------------------------------------------------------
    def cpuinfo(self) -> list[dict[str, str]]:
        """One dict per processor block of /proc/cpuinfo (keys as printed, stripped)."""
        if self._cpuinfo is None:
            blocks: list[dict[str, str]] = []
            current: dict[str, str] = {}
            for line in self.root.lines("/proc/cpuinfo"):
                if not line.strip():
                    if current:
                        blocks.append(current)
                        current = {}
                    continue
                key, sep, value = line.partition(":")
                if sep:
                    current.setdefault(key.strip(), value.strip())
            if current:
                blocks.append(current)
            self._cpuinfo = blocks
        return self._cpuinfo

    def cpu_flags(self) -> set[str]:
        for block in self.cpuinfo():
            for key in ("flags", "Features"):
                if key in block:
                    return set(block[key].split())
        return set()


class Probe:
    """One source of facts. Subclasses set ``name`` and implement the three methods."""

    name: ClassVar[str] = "probe"

    def available(self, ctx: Context) -> bool:
        """Whether this probe has anything to look at under ``ctx.root`` (cheap)."""
        return True

    def collect(self, ctx: Context) -> ProbeResult:
        raise NotImplementedError

    def advice(self, facts: dict[str, Any]) -> list[str]:
        """What the user should do about the facts (all facts so far are passed)."""
        return []
