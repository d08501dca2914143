"""Files read and written as if someone hostile had prepared them (docs/reliability.md).

- ``atomic_write``: the one way virtbench writes a file. A temporary file created exclusively
  (``mkstemp``: ``O_CREAT|O_EXCL``, so a symlink planted at its name is never followed) in
  the target's directory, written, fsync'd, renamed over the target, the directory fsync'd.
  A full or read-only disk is one clear line (``UsageError``); the previous file stays
  intact and no temporary file stays behind, also on Ctrl-C. The temporary name carries the
  writer's pid (``.<name>.<pid>-<random>.tmp``, ``write_temp_pid``), so after a SIGKILL the
  next command's sweep can tell a dead writer's file from a live one's.
- ``read_regular``: open without blocking (a FIFO named ``*.json`` would block ``open``),
  refuse anything but a regular file, cap the size.
- ``parse_json``: JSON with a nesting limit, finite numbers only, integers within 64 bits
  (a 5,000-digit number, ``1e400``, ``NaN`` or 100,000 nested ``[`` are one clear line).
- ``check_id``: a document id (it becomes part of a file name) matches ``ID_PATTERN``.
- ``clip``: at most ``MAX_QUOTE`` characters of any input in a message.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from virtbench.errors import MAX_QUOTE, UsageError, clip_message

__all__ = ["MAX_QUOTE", "clip_message"]  # defined in errors (the bottom layer), used from here

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""Document ids: letters, digits, ``_`` and ``-``, at most 64 characters, no dot and no
slash, so an id can never name another directory."""
_ID_RE = re.compile(ID_PATTERN)

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a JSON file."""

MAX_JSON_BYTES = 256 * 1024 * 1024
"""Largest JSON file read (a result document with its original report is a few 100 KB)."""

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
"""Integers in documents fit a 64-bit signed integer (SQLite's and PostgreSQL's BIGINT)."""


def clip(text: object, limit: int = MAX_QUOTE) -> str:
    """``text`` as printable one-line text of at most ``limit`` characters (plus a mark
    saying how much was cut)."""
    s = str(text)
    cut = len(s) - limit
    if cut > 0:
        s = s[:limit]
    s = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in s)
    return f"{s}... ({cut} more characters)" if cut > 0 else s


def check_id(value: str, what: str = "document id") -> str:
    """``value`` if it is a valid id, else a ``UsageError`` quoting it (clipped)."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise UsageError(f"invalid {what} {clip(repr(value), 80)}: expected 1-64 letters, "
                         "digits, '_' or '-' (starting with a letter or digit)")
    return value


# ---- writing -------------------------------------------------------------------------------


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync a directory
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def write_error(path: Path, exc: OSError) -> UsageError:
    """The one line for a failed write of ``path``."""
    return UsageError(f"{clip(path)}: cannot write: {exc.strerror or exc}")


_TEMP_RE = re.compile(r"^\..*\.([0-9]{1,10})-[A-Za-z0-9_]{8}\.tmp$", re.DOTALL)


def _temp_prefix(path: Path) -> str:
    return f".{path.name[:100]}.{os.getpid()}-"


def write_temp_pid(name: str) -> int | None:
    """The pid of the writer whose temporary file this is (a name ``atomic_write`` or
    ``replacing`` made), else ``None``."""
    m = _TEMP_RE.match(name)
    return int(m.group(1)) if m else None


def atomic_write(path: Path, data: str | bytes, *, mode: int | None = None) -> Path:
    """Replace ``path`` by ``data`` atomically (see the module doc). A symlink *at* ``path``
    is replaced, not followed (callers that mean to follow it resolve it first). ``mode``:
    default the existing file's mode, else 0666 minus the umask."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    parent = path.parent
    tmp: str | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if mode is None:
            try:
                st = os.lstat(path)
                mode = stat.S_IMODE(st.st_mode) if stat.S_ISREG(st.st_mode) else None
            except FileNotFoundError:
                mode = None
            if mode is None:
                mode = 0o666 & ~_umask()
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=parent)
        try:
            view = memoryview(payload)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """For writers that need a path (a compiler, ``tarfile``, ``zipfile``): yields a
    temporary file created exclusively beside ``path`` (so never a planted symlink); on
    normal exit it is fsync'd and renamed over ``path``, on any error removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


# ---- reading -------------------------------------------------------------------------------


def path_kind(path: Path) -> str | None:
    """``file`` (regular), ``dir``, ``other`` (FIFO, device, socket) or ``None`` (missing,
    or a name the system cannot look up: too long, a symlink loop, not a directory)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return None
    if stat.S_ISREG(mode):
        return "file"
    return "dir" if stat.S_ISDIR(mode) else "other"


def read_regular(path: Path, *, limit: int = MAX_JSON_BYTES) -> bytes:
    """The bytes of the regular file ``path``; a FIFO, device or directory is refused without
    blocking, and so is a file larger than ``limit``. Errors are one ``UsageError``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise UsageError(f"{clip(path)}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{clip(path)}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{clip(path)}: not a regular file")
        if st.st_size > limit:
            raise UsageError(f"{clip(path)}: too large ({st.st_size} bytes; at most {limit})")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise UsageError(f"{clip(path)}: too large (more than {limit} bytes)")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise UsageError(f"{clip(path)}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


class _BadNumber(ValueError):
    pass


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"number {clip(text, 40)} is out of range")
    return value


def _parse_int(text: str) -> int:
    if len(text) > 20:
        raise _BadNumber(f"integer {clip(text, 40)} is out of range")
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise _BadNumber(f"integer {text} is out of range (64 bits)")
    return value


def _parse_constant(text: str) -> Any:
    raise _BadNumber(f"{text} is not a number JSON allows")


def _depth_ok(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return True


def parse_json(data: bytes | str, where: object) -> Any:
    """Parse ``data`` (see the module doc); ``where`` names it in the one-line error.

    No garbage collection meanwhile: 100,000 nested ``[`` take the parser to the
    interpreter's recursion limit, and a finalizer the collector ran there (an unclosed
    file's warning) could not even call the unraisable hook ("Exception ignored in
    sys.unraisablehook: RecursionError", seen in CI on ``db rebuild``)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse_json(data, where)
    finally:
        if collecting:
            gc.enable()


def _parse_json(data: bytes | str, where: object) -> Any:
    name = clip(where)
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_float=_parse_float, parse_int=_parse_int,
                           parse_constant=_parse_constant)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{name}: not JSON (line {exc.lineno}: {exc.msg})") from None
    except _BadNumber as exc:
        raise UsageError(f"{name}: {exc}") from None
    except RecursionError:
        raise UsageError(f"{name}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)"
                         ) from None
    except ValueError as exc:
        raise UsageError(f"{name}: not JSON ({clip(exc)})") from None
    if not _depth_ok(value, MAX_JSON_DEPTH):
        raise UsageError(f"{name}: JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    return value


def read_json(path: Path) -> Any:
    """``parse_json(read_regular(path))``."""
    return parse_json(read_regular(path), path)
