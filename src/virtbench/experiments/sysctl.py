"""Kernel settings (sysctls) that are changed for an experiment and ALWAYS put back.

Settings are files under a root (``/proc/sys``; injectable so a copied tree can stand in for
it in tests). Before the first change a *restore journal* (JSON, ``journal_path()``) records
every original value; it is written atomically and fsync-ed, and created exclusively, so
two tune runs never interleave. ``restore()`` writes the originals back and removes the
journal only when every value reads back as it was. If virtbench dies without restoring
(``kill -9``, power cut of the terminal), ``virtbench tune --restore`` replays the journal.

Coupled settings: writing ``vm.dirty_ratio`` zeroes ``vm.dirty_bytes`` (and the other way
round; the same for the ``dirty_background_*`` pair). The journal records both members of
such a pair, and restoring writes back only the member that was non-zero, which puts both
back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from virtbench import paths
from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.experiments.common import signals_deferred as signals_deferred
from virtbench.results.model import utc_now

PROC_SYS = Path("/proc/sys")
JOURNAL_TYPE = "virtbench.tune-journal"
JOURNAL_VERSION = 1
COUPLED: dict[str, str] = {
    "vm.dirty_ratio": "vm.dirty_bytes",
    "vm.dirty_bytes": "vm.dirty_ratio",
    "vm.dirty_background_ratio": "vm.dirty_background_bytes",
    "vm.dirty_background_bytes": "vm.dirty_background_ratio",
}
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]+([./][A-Za-z0-9_\-]+)+$")
_INTS_RE = re.compile(r"^-?\d+(\s+-?\d+)*$")


def journal_path() -> Path:
    return paths.data_dir() / "tune-journal.json"


def normalize(value: str) -> str:
    """A sysctl value as compared: whitespace runs (tabs in multi-field values) → one space."""
    return " ".join(value.split())


def key_path(root: Path, key: str) -> Path:
    """``vm.dirty_ratio`` → ``<root>/vm/dirty_ratio`` (``/`` separators are accepted too)."""
    if not _KEY_RE.match(key) or ".." in key.split("/"):
        raise UsageError(f"not a sysctl name: {key!r} (expected e.g. vm.dirty_ratio)")
    return root.joinpath(*key.replace("/", ".").split("."))


def _read(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return normalize(f.read())


def _write(path: Path, value: str) -> None:
    # One write(2) of the whole value, as sysctl(8) does; the kernel validates it.
    flags = os.O_WRONLY if _is_proc(path) else os.O_WRONLY | os.O_TRUNC
    fd = os.open(path, flags)
    try:
        os.write(fd, (value + "\n").encode())
    finally:
        os.close(fd)


def _is_proc(path: Path) -> bool:
    return str(path).startswith(str(PROC_SYS) + "/")


@dataclass(frozen=True)
class Setting:
    key: str
    path: str
    original: str
    new: str | None
    """``None`` for a coupled partner that is recorded but not set."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_only_reason(path: Path, root: Path) -> str | None:
    try:
        st = os.statvfs(path)
        if st.f_flag & os.ST_RDONLY:
            return f"{root} is mounted read-only here (a container without privileges?)"
    except OSError:
        pass
    mode = path.stat().st_mode
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        return "it is read-only"
    if not os.access(path, os.W_OK):
        return "this user may not write it"
    return None


def plan(assignments: Sequence[str], root: Path = PROC_SYS) -> list[Setting]:
    """Check every ``KEY=VALUE`` without changing anything: the key exists, is a writable
    setting, the value looks like the current one (integers stay integers). Returns the
    settings to change followed by their coupled partners (recorded, not set).
    ``UsageError``/``EnvironmentUnsupported`` on the first problem."""
    if not assignments:
        raise UsageError("nothing to tune: give at least one --set KEY=VALUE")
    if root == PROC_SYS and os.geteuid() != 0:
        raise EnvironmentUnsupported("tune changes kernel settings under /proc/sys and needs "
                                     "root: run it with sudo")
    if not root.is_dir():
        raise UsageError(f"sysctl root {root} is not a directory")
    settings: list[Setting] = []
    seen: set[str] = set()
    for item in assignments:
        key, sep, value = item.partition("=")
        key, value = key.strip().replace("/", "."), normalize(value)
        if not sep or not key:
            raise UsageError(f"--set wants KEY=VALUE, e.g. vm.dirty_ratio=40 (got {item!r})")
        if not value:
            raise UsageError(f"--set {key}: empty value")
        if key in seen:
            raise UsageError(f"--set {key} given twice")
        seen.add(key)
        path = key_path(root, key)
        if not path.exists():
            raise UsageError(f"unknown sysctl {key}: {path} does not exist")
        if not path.is_file():
            raise UsageError(f"{key} is a group of settings ({path} is a directory), not one")
        try:
            original = _read(path)
        except OSError as exc:
            raise UsageError(f"cannot read {key}: {exc.strerror}") from None
        reason = _read_only_reason(path, root)
        if reason:
            raise UsageError(f"cannot change {key}: {reason}")
        if _INTS_RE.match(original) and not _INTS_RE.match(value):
            raise UsageError(f"--set {key}={value}: {key} takes integers (now {original!r})")
        settings.append(Setting(key, str(path), original, value))
    for s in list(settings):
        partner = COUPLED.get(s.key)
        if partner and partner not in seen:
            ppath = key_path(root, partner)
            if ppath.is_file():
                settings.append(Setting(partner, str(ppath), _read(ppath), None))
                seen.add(partner)
    return settings


# ---- journal ---------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def pid_is_tune(pid: int) -> bool:
    """Whether ``pid`` is alive and a virtbench tune process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"virtbench" in part for part in cmdline) and b"tune" in cmdline


def read_journal(path: Path | None = None) -> dict[str, Any] | None:
    path = path if path is not None else journal_path()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"restore journal {path} is unreadable ({exc}): restore the settings "
                         "by hand, then delete it") from None
    if not isinstance(doc, dict) or doc.get("type") != JOURNAL_TYPE:
        raise UsageError(f"{path} is not a virtbench tune journal")
    if doc.get("version") != JOURNAL_VERSION:
        raise UsageError(f"{path}: journal version {doc.get('version')} is not understood")
    return doc


def write_journal(settings: Sequence[Setting], root: Path, path: Path | None = None) -> Path:
    """Create the journal exclusively (fails if one exists) with every original value."""
    path = path if path is not None else journal_path()
    existing = read_journal(path)
    if existing is not None:
        pid = int(existing.get("pid", 0))
        if pid and pid != os.getpid() and pid_is_tune(pid):
            raise UsageError(f"another virtbench tune (pid {pid}) is changing sysctls; "
                             "wait for it to finish")
        raise UsageError(f"a previous tune run (pid {pid}) did not restore its settings: run "
                         "`virtbench tune --restore` first")
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "type": JOURNAL_TYPE, "version": JOURNAL_VERSION, "pid": os.getpid(),
        "started": utc_now(), "root": str(root),
        "settings": [s.to_dict() for s in settings],
    }
    # Created exclusively (mkstemp): a symlink planted at a predictable name is not followed.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # atomic and exclusive: fails if another run created it meanwhile
    except FileExistsError:
        raise UsageError(f"another tune run created {path} just now; try again") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the sysctl journal: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def journal_settings(doc: dict[str, Any]) -> list[Setting]:
    out = []
    for s in doc.get("settings", []):
        out.append(Setting(str(s["key"]), str(s["path"]), str(s["original"]),
                           None if s.get("new") is None else str(s["new"])))
    return out


def remove_journal(path: Path | None = None) -> None:
    path = path if path is not None else journal_path()
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


# ---- applying and restoring ------------------------------------------------------------------
@dataclass(frozen=True)
class Applied:
    key: str
    asked: str
    got: str


def apply(settings: Sequence[Setting]) -> list[Applied]:
    """Write the new values (partners untouched). ``UsageError`` if the kernel refuses one;
    the caller restores."""
    done = []
    for s in settings:
        if s.new is None:
            continue
        path = Path(s.path)
        try:
            _write(path, s.new)
        except OSError as exc:
            raise UsageError(f"the kernel refused {s.key}={s.new}: {exc.strerror}") from None
        done.append(Applied(s.key, s.new, _read(path)))
    return done


@dataclass(frozen=True)
class Restored:
    key: str
    original: str
    before: str | None
    """Value found before restoring (``None`` if unreadable)."""
    now: str | None
    ok: bool
    error: str | None = None


def _skip_for_partner(s: Setting, by_key: dict[str, Setting]) -> bool:
    partner = by_key.get(COUPLED.get(s.key, ""))
    return partner is not None and s.original == "0" and partner.original != "0"


def restore(settings: Sequence[Setting]) -> list[Restored]:
    """Put every original value back (coupled pairs through their non-zero member) and
    check it reads back. Never raises for one bad setting: each gets its own outcome."""
    by_key = {s.key: s for s in settings}
    befores: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for s in settings:
        path = Path(s.path)
        try:
            befores[s.key] = _read(path)
        except OSError as exc:
            befores[s.key] = None
            errors[s.key] = f"cannot read: {exc.strerror}"
            continue
        if _skip_for_partner(s, by_key) or befores[s.key] == s.original:
            continue
        try:
            _write(path, s.original)
        except OSError as exc:
            errors[s.key] = f"cannot write: {exc.strerror}"
    out = []
    for s in settings:
        try:
            now: str | None = _read(Path(s.path))
        except OSError:
            now = None
        ok = now == s.original
        err = errors.get(s.key)
        if not ok and err is None:
            err = f"reads {now!r} after restoring"
        out.append(Restored(s.key, s.original, befores.get(s.key), now, ok, None if ok else err))
    return out


def restore_journal(path: Path | None = None) -> tuple[dict[str, Any] | None, list[Restored]]:
    """``virtbench tune --restore``: replay a journal left behind. Removes it when every
    value is back. Returns (journal, outcomes); (None, []) when there is no journal."""
    path = path if path is not None else journal_path()
    doc = read_journal(path)
    if doc is None:
        return None, []
    pid = int(doc.get("pid", 0))
    if pid and pid != os.getpid() and pid_is_tune(pid):
        raise UsageError(f"virtbench tune (pid {pid}) is still running and restores its "
                         "settings when it ends; stop it with Ctrl-C or `kill {pid}`")
    root = Path(str(doc.get("root", PROC_SYS)))
    if root == PROC_SYS and os.geteuid() != 0:
        raise EnvironmentUnsupported("restoring sysctls under /proc/sys needs root: run "
                                     "`sudo virtbench tune --restore`")
    with signals_deferred():
        outcomes = restore(journal_settings(doc))
        if all(o.ok for o in outcomes):
            remove_journal(path)
    return doc, outcomes
