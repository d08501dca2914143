"""Where the Ansible programs are and how the user's own inventory is read.

virtbench never parses inventories itself: ``ansible-inventory`` (the user's Ansible, with the
user's ansible.cfg and inventory plugins) lists the hosts and their groups.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.procfs import start_time


def ansible_bin(name: str) -> str:
    """Path of an Ansible program (``ansible-playbook``, ``ansible-inventory``): first beside
    the Python running virtbench (a venv that is not activated), then on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which(name)
    if found:
        return found
    raise EnvironmentUnsupported(
        f"{name} not found: virtbench fleet needs Ansible on the controller "
        "(pip install ansible-core ansible-runner)"
    )


def ansible_env(persist: int = 60) -> dict[str, str]:
    """Environment for Ansible runs: the user's ansible.cfg in the current directory is kept
    (ansible-runner runs from its own directory), Ansible's programs are on PATH, and the
    settings tuned for many hosts (docs/fleet.md, "Ansible at 100 hosts") where the user's
    configuration says nothing: pipelining, a result-queue poll of 20 ms instead of 1 ms
    (Ansible's main process polls its workers' results in a loop), SSH without compression
    (the bundle is gzipped, the rest is a few lines) and connection masters that outlive a
    poll interval (``persist`` seconds)."""
    env: dict[str, str] = {}
    if "ANSIBLE_INTERNAL_POLL_INTERVAL" not in os.environ and \
            _config_value("defaults", "internal_poll_interval") is None:
        env["ANSIBLE_INTERNAL_POLL_INTERVAL"] = "0.02"
    if "ANSIBLE_SSH_ARGS" not in os.environ and \
            _config_value("ssh_connection", "ssh_args") is None:
        env["ANSIBLE_SSH_ARGS"] = f"-o ControlMaster=auto -o ControlPersist={int(persist)}s"
    if "ANSIBLE_CONFIG" not in os.environ and Path("ansible.cfg").is_file():
        env["ANSIBLE_CONFIG"] = str(Path("ansible.cfg").resolve())
    if "ANSIBLE_PIPELINING" not in os.environ and \
            _config_value("connection", "pipelining") is None and \
            _config_value("ssh_connection", "pipelining") is None:
        # One SSH round trip per module instead of several; only when the user's Ansible
        # configuration says nothing about it (requiretty sudoers need it off).
        env["ANSIBLE_PIPELINING"] = "True"
    if "ANSIBLE_HOST_KEY_CHECKING" not in os.environ:
        # ansible-runner turns host key checking off unless told; keep Ansible's own default
        # (on) or what the user's ansible.cfg says.
        env["ANSIBLE_HOST_KEY_CHECKING"] = _config_value("defaults", "host_key_checking") \
            or "True"
    cp = control_dir()
    if cp is not None:
        with contextlib.suppress(OSError):
            cp.mkdir(mode=0o700, parents=True, exist_ok=True)
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(cp)
    if "ANSIBLE_SSH_EXTRA_ARGS" not in os.environ and \
            _config_value("ssh_connection", "ssh_extra_args") is None:
        # A host that loses power leaves its ControlPersist master waiting on a connection
        # nobody answers (for the kernel's retransmission timeout, about 15 minutes), and
        # every poll through it with it: keepalives end the master within ~15 s, so the host
        # is reported lost instead of hanging the fleet. Inventory variables still win.
        env["ANSIBLE_SSH_EXTRA_ARGS"] = "-o ServerAliveInterval=5 -o ServerAliveCountMax=3"
    bindir = str(Path(ansible_bin("ansible-playbook")).parent)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        env["PATH"] = bindir + os.pathsep + path
    return env


CONTROL_PREFIX = "vb-"
"""Name of a fleet controller's SSH master directory: ``vb-<pid>-<start time>``."""


def _control_base() -> Path:
    return Path.home() / ".ansible" / "cp"  # Ansible's own default: short socket paths


def control_dir() -> Path | None:
    """This process's own directory for the SSH master connections Ansible keeps open
    (``ControlPersist``, 60 s by default), so that they can be closed when the fleet command
    ends (:func:`close_masters`) instead of lingering for a minute after it (kill points:
    every ``fleet run`` trial left one). ``None`` when the user configures Ansible's SSH
    multiplexing (control path, its directory or the SSH arguments): then it is theirs."""
    if any(k in os.environ for k in ("ANSIBLE_SSH_CONTROL_PATH_DIR",
                                     "ANSIBLE_SSH_CONTROL_PATH", "ANSIBLE_SSH_ARGS")):
        return None
    if any(_config_value("ssh_connection", k) is not None
           for k in ("control_path_dir", "control_path", "ssh_args")):
        return None

    return _control_base() / f"{CONTROL_PREFIX}{os.getpid()}-{start_time(os.getpid()) or 0}"


def control_name(host: str) -> str:
    """The name of an inventory host's SSH master socket in :func:`control_dir`: fleet plays
    set Ansible's ``ansible_control_path`` to it (:func:`control_path_var`), so that the
    controller can open sessions of its own on the master the preflight left (the bundle is
    shipped so: docs/fleet.md). Ansible's own name hashes the address, port and user it
    resolved, which the controller does not know."""
    return hashlib.sha256(host.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def control_path_var(hosts: list[str]) -> dict[str, object]:
    """Extra variables that name each host's master socket after :func:`control_name`
    (empty when the user's configuration owns SSH multiplexing: :func:`control_dir`)."""
    if control_dir() is None:
        return {}
    return {"vb_control_name": {h: control_name(h) for h in hosts},
            "ansible_control_path":
                "%(directory)s/{{ vb_control_name[inventory_hostname] }}"}


def _master_pids(d: Path) -> dict[str, int]:
    """Socket path -> pid of this user's ssh master serving it, from ``/proc`` (Linux): a
    ControlPersist master's process title is ``ssh: <socket> [mux]``. Empty elsewhere."""
    found: dict[str, int] = {}
    prefix = f"ssh: {d}/".encode()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for e in entries:
        if not e.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{e}/cmdline").read_bytes()
            if not cmd.startswith(prefix) or os.stat(f"/proc/{e}").st_uid != os.getuid():
                continue
        except OSError:
            continue
        title = cmd.rstrip(b"\0").decode(errors="replace")
        if title.endswith(" [mux]"):
            found[title[len("ssh: "):-len(" [mux]")]] = int(e)
    return found


def _gone(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return text.rsplit(")", 1)[1].split()[0] == "Z"


def close_masters(directory: Path | None = None) -> int:
    """Ask every SSH master whose socket is in ``directory`` (default: this process's
    :func:`control_dir`) to exit, then remove the directory; the number closed.

    A master found in ``/proc`` gets SIGTERM (it closes its connection and removes its
    socket); only the others are asked with ``ssh -O exit``: one ssh process per host cost
    the controller about 4 ms of CPU each, 0.4 s at 100 hosts."""
    d = directory if directory is not None else control_dir()
    if d is None or not d.is_dir() or d.is_symlink():
        return 0
    closed = 0
    ssh = shutil.which("ssh")
    pids = _master_pids(d)
    signalled = []
    for sock in sorted(d.iterdir()):
        pid = pids.get(str(sock))
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
                signalled.append(pid)
                closed += 1
                continue
        if ssh is not None and sock.is_socket():
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                proc = subprocess.run(
                    [ssh, "-o", f"ControlPath={sock}", "-O", "exit", "vb-fleet-master"],
                    stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False)
                closed += proc.returncode == 0
        with contextlib.suppress(OSError):
            sock.unlink()
    deadline = time.monotonic() + 5
    while signalled and time.monotonic() < deadline:  # gone when the command ends
        signalled = [p for p in signalled if not _gone(p)]
        if signalled:
            time.sleep(0.02)
    with contextlib.suppress(OSError):
        d.rmdir()
    return closed


def stale_control_dirs() -> list[Path]:
    """SSH master directories of fleet controllers that are gone (killed outright)."""
    found = []
    try:
        entries = list(_control_base().iterdir())
    except OSError:
        return []
    for d in entries:
        parts = d.name.removeprefix(CONTROL_PREFIX).split("-")
        if (not d.name.startswith(CONTROL_PREFIX) or len(parts) != 2
                or not all(p.isdigit() for p in parts)):
            continue
        pid, started = int(parts[0]), int(parts[1])
        if pid != os.getpid() and start_time(pid) != started:
            found.append(d)
    return found


def sweep_masters(say: Callable[[str], None]) -> None:
    """Close the SSH masters of fleet commands killed outright (the sweep on start; they
    would stay open until ``ControlPersist`` runs out)."""
    for d in stale_control_dirs():
        n = close_masters(d)
        if n:
            say(f"a virtbench fleet command was killed: closed its {n} SSH connection(s)")


def _config_file() -> Path | None:
    """The configuration file Ansible uses here (the first that exists, in its order)."""
    for c in (os.environ.get("ANSIBLE_CONFIG"), "ansible.cfg",
              str(Path.home() / ".ansible.cfg"), "/etc/ansible/ansible.cfg"):
        if c and Path(c).is_file():
            return Path(c)
    return None


def _config_value(section: str, key: str) -> str | None:
    path = _config_file()
    if path is None:
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
        value = parser.get(section, key, fallback=None)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return value.strip() if value is not None else None


@dataclass(frozen=True)
class InventoryHost:
    name: str
    groups: tuple[str, ...]
    """Every group the host is in (parents of its groups included), as Ansible's
    ``group_names``: without ``all`` and ``ungrouped``."""


def list_hosts(inventory: str, limit: str | None = None) -> list[InventoryHost]:
    """Hosts of ``inventory`` selected by ``limit``, in inventory order."""
    if not Path(inventory).exists() and "," not in inventory:
        raise UsageError(f"inventory {inventory}: no such file or directory")
    cmd = [ansible_bin("ansible-inventory"), "-i", inventory, "--list"]
    if limit:
        cmd += ["--limit", limit]
    env = {**os.environ, **ansible_env()}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env,
                              check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"ansible-inventory -i {inventory} took more than 120 s") from None
    if proc.returncode != 0:
        last = _last_error_line(proc.stderr) or f"exit status {proc.returncode}"
        raise UsageError(f"cannot read inventory {inventory}: {last}")
    try:
        data: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise UsageError(f"ansible-inventory -i {inventory} printed no JSON") from None
    return hosts_from_listing(data)


def hosts_from_listing(data: dict[str, Any]) -> list[InventoryHost]:
    """Flatten ``ansible-inventory --list`` output into hosts with all their groups."""
    parents: dict[str, set[str]] = {}
    direct: dict[str, list[str]] = {}
    order: list[str] = []
    seen: set[str] = set()

    def visit(group: str) -> None:
        body = data.get(group) or {}
        for h in body.get("hosts", []):
            direct.setdefault(h, []).append(group)
            if h not in seen:
                seen.add(h)
                order.append(h)
        for child in body.get("children", []):
            parents.setdefault(child, set()).add(group)
            visit(child)

    visit("all")

    def ancestors(group: str) -> set[str]:
        out: set[str] = set()
        todo = [group]
        while todo:
            g = todo.pop()
            if g in out:
                continue
            out.add(g)
            todo.extend(parents.get(g, ()))
        return out

    hosts = []
    for h in order:
        groups: set[str] = set()
        for g in direct.get(h, []):
            groups |= ancestors(g)
        groups -= {"all", "ungrouped"}
        hosts.append(InventoryHost(h, tuple(sorted(groups))))
    return hosts


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "ERROR" in ln or "error" in ln:
            return ln.replace("[ERROR]: ", "")
    return lines[-1] if lines else ""
