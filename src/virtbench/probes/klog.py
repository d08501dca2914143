"""The kernel log: parsing every usual format, and reading only the latest boot of a long file.

A captured ``kern.log`` or ``/var/log/messages`` may hold many boots and hundreds of
megabytes. :func:`read_latest_boot` looks for the last ``Linux version ...`` banner (or a
``-- Boot <id> --`` separator of ``journalctl``) scanning the file backwards in fixed-size
chunks, so time and memory stay bounded whatever the size; it keeps the start of that boot
(where the hypervisor banners and driver probes are) and its end, and says what it skipped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

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
_JOURNAL_BOOT = re.compile(rb"^-- Boot [0-9a-f]{32} --\s*$")

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

# Of the latest boot, at most HEAD bytes from its start and TAIL bytes from its end are parsed.
HEAD = 3 * 1024 * 1024
TAIL = 1024 * 1024
_CHUNK = 1024 * 1024
_OVERLAP = 4096
# The backward search for the last boot reads at most this much (a sparse 1 TB file must not
# take hours); longer boots are read as the file's start and its end.
SCAN_LIMIT = 256 * 1024 * 1024
# Kernel messages are under 1024 bytes (LOG_LINE_MAX); a longer line is cut.
MAX_LINE = 4096


@dataclass
class LogLine:
    raw: str  # the line as it appeared (for evidence)
    msg: str  # the message without timestamps and syslog prefixes


@dataclass
class LogText:
    text: str
    skipped: list[str] = field(default_factory=list)  # what was not read, for people


def message(raw: str) -> str:
    """The message of one log line, without timestamps and syslog prefixes."""
    m = _KMSG_RE.match(raw)
    if m:
        return m.group(4).strip()
    return _PREFIX_RE.sub("", raw, count=1).strip()


def parse_log(text: str) -> list[LogLine]:
    out: list[LogLine] = []
    for raw in text.splitlines():
        raw = raw[:MAX_LINE].replace("\x00", "").rstrip()
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


def _is_boot_start(line: bytes) -> bool:
    if _JOURNAL_BOOT.match(line):
        return True
    text = line[:400].decode("utf-8", "replace").replace("\x00", "")
    return message(text).startswith("Linux version ")


def _last_boot_in(data: bytes, rs: int, lo: int, hi: int) -> int | None:
    """File offset of the last boot-start line beginning in [lo, hi); ``data`` starts at
    file offset ``rs`` (``rs < lo`` unless ``lo == 0``, so a line start at ``lo`` is seen)."""
    best: int | None = None
    for needle in (b"Linux version ", b"-- Boot "):
        end = len(data)
        while (i := data.rfind(needle, 0, end)) >= 0:
            nl = data.rfind(b"\n", 0, i)
            if nl < 0 and rs > 0:
                break  # the line began before this chunk: an earlier chunk sees it whole
            line_start = rs + nl + 1
            if line_start < lo:
                break
            stop = data.find(b"\n", i)
            if line_start < hi and _is_boot_start(data[nl + 1: stop if stop >= 0 else None]):
                best = line_start if best is None else max(best, line_start)
                break
            end = i
    return best


def find_last_boot(fd: int, size: int) -> int | None:
    """File offset where the last boot starts (0 when none is marked; ``None`` when none was
    found in the last SCAN_LIMIT bytes). Reads the file backwards in chunks and stops at the
    first boot found: bounded memory, and time bounded by SCAN_LIMIT."""
    pos = size
    while pos > 0:
        if size - pos >= SCAN_LIMIT:
            return None
        lo = max(0, pos - _CHUNK)
        rs = max(0, lo - 1)
        data = os.pread(fd, min(size, pos + _OVERLAP) - rs, rs)
        hit = _last_boot_in(data, rs, lo, pos)
        if hit is not None:
            return hit
        pos = lo
    return 0


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 100_000 else f"{n} bytes"


def read_latest_boot(fd: int, size: int) -> LogText:
    """The text of the latest boot in the open log ``fd`` (bounded), and what was skipped."""
    skipped: list[str] = []
    found = find_last_boot(fd, size) if size > 0 else 0
    boot = 0 if found is None else found
    if found is None:
        skipped.append(f"no boot start in the last {_mb(SCAN_LIMIT)}: read as one boot")
    if boot > 0:
        skipped.append(f"earlier boots: the first {_mb(boot)} (the latest boot starts at "
                       f"byte {boot})")
    length = size - boot
    if length <= HEAD + TAIL:
        data = os.pread(fd, length, boot)
    else:
        head = os.pread(fd, HEAD, boot)
        head = head[: head.rfind(b"\n") + 1] or head
        tail = os.pread(fd, TAIL, size - TAIL)
        tail = tail[tail.find(b"\n") + 1:]
        middle = length - len(head) - len(tail)
        skipped.append(f"the middle of the latest boot: {_mb(middle)} after its first "
                       f"{_mb(len(head))} (its last {_mb(len(tail))} was read)")
        data = head + tail
    return LogText(data.decode("utf-8", errors="replace"), skipped)


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
