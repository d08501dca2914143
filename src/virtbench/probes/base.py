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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

# Files in /proc and /sys report size 0 or 4096; read at most this much of any one file.
MAX_READ = 4 * 1024 * 1024
# Evidence lines are shown to people: keep them to one screen line.
MAX_EVIDENCE = 240

_ABSENT = {errno.ENOENT, errno.ENOTDIR, errno.ENXIO, errno.ENODEV}


def clip(text: str, limit: int = MAX_EVIDENCE) -> str:
    text = text.strip().replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def excerpt(prefix: str, line: str, start: int, end: int, limit: int = MAX_EVIDENCE) -> str:
    """``prefix + line``, shortened around ``line[start:end]`` (the part that decided)."""
    if len(prefix) + len(line) <= limit:
        return prefix + line
    room = max(40, limit - len(prefix) - (end - start) - 8)
    a = max(0, start - room // 2)
    b = min(len(line), end + room // 2)
    return prefix + ("..." if a else "") + line[a:b] + ("..." if b < len(line) else "")


class Root:
    """Read-only view of a file tree rooted at ``path`` (``/`` means the live system)."""

    def __init__(self, path: Path | str = "/") -> None:
        self.path = Path(path)
        self.live = self.path.resolve() == Path("/")
        self.unreadable: list[str] = []
        self._cache: dict[str, bytes | None] = {}

    def p(self, rel: str) -> Path:
        """The real path of ``rel`` (a live path such as ``/proc/cpuinfo``) under this root."""
        return self.path / rel.lstrip("/")

    def note_unreadable(self, rel: str, reason: str) -> None:
        entry = f"{rel}: {reason}"
        if entry not in self.unreadable:
            self.unreadable.append(entry)

    def _oserror(self, rel: str, exc: OSError) -> None:
        if exc.errno in _ABSENT:
            return
        self.note_unreadable(rel, exc.strerror or type(exc).__name__)

    def read_bytes(self, rel: str, limit: int = MAX_READ) -> bytes | None:
        if rel in self._cache:
            return self._cache[rel]
        if "\x00" in rel:  # a path built from a corrupt file
            return None
        data: bytes | None = None
        try:
            with open(self.p(rel), "rb", buffering=0) as fh:
                # Small reads: sysctl files fail with ENOMEM on a multi-megabyte read().
                chunks: list[bytes] = []
                total = 0
                while total < limit:
                    chunk = fh.read(min(65536, limit - total))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    total += len(chunk)
                data = b"".join(chunks)
        except IsADirectoryError:
            data = None
        except OSError as exc:
            self._oserror(rel, exc)
        self._cache[rel] = data
        return data

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
        if "\x00" in rel:
            return False
        try:
            os.lstat(self.p(rel))
        except OSError as exc:
            if exc.errno not in _ABSENT:
                self._oserror(rel, exc)
            return False
        return True

    def is_dir(self, rel: str) -> bool:
        return "\x00" not in rel and self.p(rel).is_dir()

    def listdir(self, rel: str) -> list[str]:
        if "\x00" in rel:
            return []
        try:
            return sorted(os.listdir(self.p(rel)))
        except OSError as exc:
            self._oserror(rel, exc)
            return []

    def readlink(self, rel: str) -> str | None:
        if "\x00" in rel:
            return None
        try:
            return os.readlink(self.p(rel))
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
        self.clues.append(Clue(kind, name, clip(evidence), weight, variant))


_KMSG_RE = re.compile(r"^(\d+),(\d+),(\d+),[^;]*;(.*)$")
_PREFIX_RE = re.compile(
    r"^(?:<\d+>)?"  # syslog priority
    r"(?:\S+\s+\d+\s+[\d:]+\s+\S+\s+kernel:\s*|"  # 'Nov 22 00:00:00 host kernel: '
    r"\d{4}-\d\d-\d\dT\S+\s+\S+\s+kernel:\s*)?"  # ISO timestamp syslog / journalctl
    r"(?:<\d+>)?"
    r"(?:(?:kern|user|daemon|syslog)\s*:(?:emerg|alert|crit|err|warn|notice|info|debug)"
    r"\s*:\s*)?"  # dmesg -x: 'kern  :info  : '
    r"(?:\[\s*\d+\.\d+\]\s?|"  # '[    0.000000] '
    r"\[[A-Z][a-z]{2} [A-Z][a-z]{2}\s+\d+ [\d:]+ \d{4}\]\s?|"  # dmesg -T
    r"\d{4}-\d\d-\d\dT[\d:,.]+[+-]\d\d:?\d\d\s)?"  # dmesg --time-format iso
    r"(?:(?:\S+\s+)?kernel:\s+)?"  # journalctl -k -o short-monotonic: '[ 0.1] host kernel: '
)


# Where a captured tree may keep the kernel log, in order of preference.
OFFLINE_LOGS = (
    "/dmesg.txt",
    "/dmesg",
    "/dmesg.log",
    "/kern.log",
    "/journal.txt",
    "/var/log/dmesg",
    "/var/log/kern.log",
    "/var/log/boot.msg",
    "/var/log/messages",
    "/var/log/syslog",
)


@dataclass
class LogLine:
    raw: str  # the line as it appeared (for evidence)
    msg: str  # the message without timestamps and syslog prefixes


class Context:
    """What probes share: the root, and lazily parsed common sources."""

    def __init__(self, root: Root, *, steal_sample_s: float = 0.0, test_dir: str | None = None):
        self.root = root
        self.steal_sample_s = steal_sample_s
        self.test_dir = test_dir
        self._log: tuple[str, list[LogLine]] | None = None
        self._cpuinfo: list[dict[str, str]] | None = None
        self.facts: dict[str, Any] = {}

    # ---- kernel log -------------------------------------------------------------------------
    def kernel_log(self) -> tuple[str, list[LogLine]]:
        """(source, lines) of the kernel log; source is ``""`` when none was readable."""
        if self._log is None:
            self._log = self._read_kernel_log()
        return self._log

    def _read_kernel_log(self) -> tuple[str, list[LogLine]]:
        root = self.root
        if not root.live:
            for rel in OFFLINE_LOGS:
                text = root.read(rel)
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
            content = root.read(rel)
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


def parse_log(text: str) -> list[LogLine]:
    out: list[LogLine] = []
    for raw in text.splitlines():
        raw = raw.replace("\x00", "").rstrip()
        if not raw.strip():
            continue
        m = _KMSG_RE.match(raw)
        if m:
            usec = int(m.group(3))
            msg = m.group(4)
            raw = f"[{usec // 1000000:5d}.{usec % 1000000:06d}] {msg}"
            out.append(LogLine(raw, msg.strip()))
            continue
        msg = _PREFIX_RE.sub("", raw, count=1).strip()
        out.append(LogLine(raw.strip(), msg))
    return out


def read_kmsg(limit: int = 8 * 1024 * 1024) -> str | tuple[None, str]:
    """Read the live kernel ring buffer without blocking: its text, or (None, reason)."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return None, exc.strerror or "cannot open"
    chunks: list[str] = []
    total = 0
    try:
        while total < limit:
            try:
                rec = os.read(fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:  # EPIPE: records were overwritten while reading; go on
                continue
            except OSError as exc:
                if not chunks:
                    return None, exc.strerror or "read failed"
                break
            if not rec:
                break
            total += len(rec)
            # Continuation lines (' KEY=value') carry device metadata, not messages.
            first = rec.decode("utf-8", errors="replace").split("\n", 1)[0]
            chunks.append(first)
    finally:
        os.close(fd)
    return "\n".join(chunks)


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
