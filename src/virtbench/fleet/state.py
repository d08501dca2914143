"""The persisted state of a fleet run: what every host is doing, written on every change.

``data_dir()/fleet/<run-id>/state.json`` is rewritten atomically (temp file + rename) after
each host transition, so ``fleet status``, ``fleet resume`` and ``fleet results`` work after
a crash, a Ctrl-C or a reboot of the controller. Next to it: ``hosts/<host>/`` (the fetched
document and the command's stderr), ``runner/`` (ansible-runner's private data dir with the
artifacts of the last Ansible invocation) and ``lock`` (held by the controller while it runs).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from virtbench import paths
from virtbench.errors import UsageError
from virtbench.safeio import atomic_write, check_id

STATE_VERSION = 1

HostStatus = Literal["queued", "checking", "installing", "running", "fetching", "fetched",
                     "failed"]
FINAL: frozenset[str] = frozenset({"fetched"})
ACTIVE: frozenset[str] = frozenset({"checking", "installing", "running", "fetching"})
STATUSES: tuple[str, ...] = ("queued", "checking", "installing", "running", "fetching",
                             "fetched", "failed")


def utc_now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def fleet_root() -> Path:
    return paths.data_dir() / "fleet"


def new_run_id() -> str:
    """Sortable and short: ``20261122-003512-ab12``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


@dataclass
class HostState:
    name: str
    groups: list[str] = field(default_factory=list)
    status: str = "queued"
    reason: str | None = None
    """Why the host failed (one line), or a note on a fetched host (e.g. exit status)."""
    attempts: int = 0
    """How many times the command was launched on this host."""
    python: str | None = None
    python_version: str | None = None
    compiler: str | None = None
    machine: str | None = None
    platform: str | None = None
    """The target's wheel platform (e.g. ``manylinux_2_36_x86_64``) for shipped wheels."""
    remote_dir: str | None = None
    """The host's private directory on the target (venv, wheels, run directories)."""
    run_dir: str | None = None
    """This fleet run's directory on the target (the command's cwd and output)."""
    job_id: str | None = None
    """Ansible async job id of the detached command."""
    job_file: str | None = None
    launched: str | None = None
    finished: str | None = None
    rc: int | None = None
    last_poll: str | None = None
    lost_polls: int = 0
    """Consecutive polls that could not reach the host while its command ran."""
    document: str | None = None
    """Local path of the fetched document."""
    run_ids: list[str] = field(default_factory=list)
    """Ids of the documents imported into the store for this host (latest last)."""
    kind: str | None = None
    """``virtbench.run``, ``virtbench.experiment`` or another document type."""
    summary: str | None = None
    """A few words on the fetched document (``index 1523.4 (1 copy)``, detected layers)."""
    stderr_tail: str | None = None
    cleaned: bool = False
    bundle: str | None = None
    """Content hash of the target bundle the host runs (``<remote base>/bundles/<host>/<hash>``
    on the target)."""
    bytes_shipped: int = 0
    """Bytes of the bundle copied to the host by this fleet run (all its launches): 0 when
    the host's cached bundle was intact."""
    ssh_seconds: float = 0.0
    """Seconds the host spent in Ansible tasks over every attempt (Ansible's durations)."""
    ssh_fastest: float | None = None
    """Seconds of the host's quickest successful Ansible task: how long it takes to answer."""
    slow: str | None = None
    """Why the host is named slow (its tasks took far longer than the fleet's median)."""
    updated: str = field(default_factory=utc_now)

    @property
    def finished_ok(self) -> bool:
        return self.status in FINAL


@dataclass
class FleetState:
    id: str
    command: list[str]
    inventory: str
    limit: str | None = None
    forks: int = 10
    options: dict[str, Any] = field(default_factory=dict)
    """``install_deps``, ``keep``, ``become``, ``deps``, ``poll_interval``, ``timeout``,
    ``remote_base``..."""
    created: str = field(default_factory=utc_now)
    updated: str = field(default_factory=utc_now)
    status: str = "running"
    """``running`` (a controller is working on it), ``done`` (every host fetched),
    ``incomplete`` (some hosts failed or were not finished), ``interrupted``."""
    controller: dict[str, Any] = field(default_factory=dict)
    """``pid``/``host`` of the controller process that last worked on the run."""
    attempts: int = 0
    hosts: dict[str, HostState] = field(default_factory=dict)
    version: int = STATE_VERSION

    # ---- paths --------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        return fleet_root() / self.id

    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    def host_dir(self, name: str) -> Path:
        return self.dir / "hosts" / _safe(name)

    # ---- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["type"] = "virtbench.fleet"
        return d

    def to_json(self) -> str:
        """The state file's text: one host per line. ``json.dumps(..., indent=2)`` of
        :meth:`to_dict` took about 25 ms of controller CPU for 100 hosts (``asdict`` copies
        every value, and an indented dump runs the pure-Python encoder) and the state is
        written on every host transition (hundreds of times per fleet run); this is the same
        data with the C encoder, readable and ``diff``-able per host."""
        top = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "hosts"}
        top["type"] = "virtbench.fleet"
        lines = [json.dumps(top)[:-1] + ', "hosts": {']
        items = list(self.hosts.items())
        for i, (name, h) in enumerate(items):
            comma = "," if i < len(items) - 1 else ""
            lines.append(f"  {json.dumps(name)}: {json.dumps(vars(h))}{comma}")
        lines.append("}}")
        return "\n".join(lines) + "\n"

    def save(self) -> None:
        self.updated = utc_now()
        atomic_write(self.state_path, self.to_json())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FleetState:
        if d.get("type") != "virtbench.fleet":
            raise UsageError("not a virtbench fleet state file")
        if int(d.get("version", 0)) > STATE_VERSION:
            raise UsageError(f"fleet state version {d.get('version')} is newer than this "
                             "virtbench understands: upgrade virtbench")
        hosts = {k: HostState(**v) for k, v in (d.get("hosts") or {}).items()}
        known = {k: v for k, v in d.items() if k not in ("hosts", "type")}
        return cls(hosts=hosts, **known)

    @classmethod
    def load(cls, run_id: str) -> FleetState:
        """By id, unique prefix, or ``latest`` (the most recently created run)."""
        if run_id == "latest":
            runs = list_run_dirs()
            if not runs:
                raise UsageError("no fleet runs yet (virtbench fleet run -i INVENTORY -- CMD)")
            run_id = runs[-1].name
        check_id(run_id, "fleet run id")
        path = fleet_root() / run_id / "state.json"
        if not path.exists():
            matches = [p.name for p in list_run_dirs() if p.name.startswith(run_id)]
            if len(matches) == 1:
                path = fleet_root() / matches[0] / "state.json"
            elif len(matches) > 1:
                raise UsageError(f"fleet run {run_id!r} is ambiguous: "
                                 + ", ".join(matches[:5]))
            else:
                raise UsageError(f"no fleet run {run_id!r} (see `virtbench fleet status`)")
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise UsageError(f"{path}: unreadable fleet state ({exc})") from None

    # ---- views --------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for h in self.hosts.values():
            out[h.status] = out.get(h.status, 0) + 1
        return out

    def bytes_shipped(self) -> dict[str, int]:
        """Per host: bytes of the target bundle this fleet run copied to it (0: its cached
        bundle was intact). ``bench/fleet_scale.py`` prints them."""
        return {name: h.bytes_shipped for name, h in self.hosts.items()}

    def unfinished(self) -> list[HostState]:
        return [h for h in self.hosts.values() if not h.finished_ok]

    def controller_alive(self) -> bool:
        """Is the controller that last worked on this run still running (on this machine)?"""
        pid = self.controller.get("pid")
        if not pid or self.controller.get("host") != socket.gethostname():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return lock_held(self.id)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in name) or "_"


def list_run_dirs() -> list[Path]:
    root = fleet_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "state.json").is_file())


def list_runs() -> list[FleetState]:
    out = []
    for p in list_run_dirs():
        with contextlib.suppress(UsageError):
            out.append(FleetState.load(p.name))
    return out


def lock_held(run_id: str) -> bool:
    path = fleet_root() / run_id / "lock"
    if not path.exists():
        return False
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


@contextlib.contextmanager
def run_lock(state: FleetState) -> Iterator[None]:
    """Only one controller works on a fleet run at a time."""
    state.dir.mkdir(parents=True, exist_ok=True)
    with (state.dir / "lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UsageError(
                f"fleet run {state.id} is being worked on by another controller "
                f"(pid {state.controller.get('pid')}); wait for it or stop it first"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
