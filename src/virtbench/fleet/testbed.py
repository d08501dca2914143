"""A fleet of real SSH hosts on this machine, for tests, benchmarks and trying ``fleet`` out.

Each host is its own ``sshd`` (Debian's openssh-server) listening on a loopback port, with its
own host key; all of them let one test user in with a key generated here. The testbed writes
an ordinary Ansible inventory (INI, with groups), a ``known_hosts`` file with the generated
host keys (so host key checking stays on) and nothing outside its base directory except,
when run as root, the test user (created with ``useradd`` and removed with ``userdel``).

Everything is undone by ``close()`` (also on exceptions when used as a context manager):
the sshd processes and every process the test user still runs are killed by pid, the user and
the directory are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from virtbench.errors import EnvironmentUnsupported

SSHD = "/usr/sbin/sshd"


@dataclass
class TestHost:
    __test__ = False

    name: str
    port: int
    groups: list[str]
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    reachable: bool = True
    """False for a host that is in the inventory but has no sshd (an unreachable host)."""
    extra_vars: dict[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1"
    """Where its sshd listens: loopback (LocalFleet) or its network namespace's address."""
    fault: str | None = None
    """NamespaceFleet: ``dead``, ``dying``, ``slow``, ``full`` or None (a healthy host)."""
    root: Path | None = None
    """NamespaceFleet: the captured system tree mounted at the fleet's ``root_mount``."""


def _reserve_port() -> socket.socket:
    """A loopback port held for a host for the testbed's lifetime: a socket bound to it with
    SO_REUSEADDR that never listens. A connection to it is refused (a host with no sshd, or
    a killed one) and no other program can take the port (neither ``bind`` to port 0 nor
    the local port of an outgoing connection picks a port bound so); the host's sshd, which
    sets SO_REUSEADDR too, still binds and listens on it, also when it is started again.
    A port only looked up as free and then let go could be taken before sshd bound it, or
    while a killed host was down (an ssh client's local port, another test's server)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    return s


def _children(pid: int) -> list[int]:
    """All descendants of ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def pids_with_cmdline(fragment: str) -> list[int]:
    """Processes whose command line contains ``fragment`` (a unique path, never a name)."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmd:
            found.append(int(entry.name))
    return found


def _kill(pids: list[int], sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class LocalFleet:
    """``n`` sshd hosts on loopback ports plus ``unreachable`` inventory hosts with no sshd.

    Hosts are named ``h1``..``hN`` (reachable first); ``groups`` maps a group name to host
    names (default: odd hosts in ``web``, even in ``db``).
    """

    def __init__(
        self,
        base: Path,
        n: int,
        *,
        unreachable: int = 0,
        groups: dict[str, list[str]] | None = None,
        sshd_extra: dict[str, list[str]] | None = None,
    ) -> None:
        if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
            raise EnvironmentUnsupported(
                "the local fleet testbed needs openssh-server and openssh-client "
                "(apt-get install openssh-server)"
            )
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.n = n
        self.hosts: list[TestHost] = []
        self.user: str = pwd.getpwuid(os.getuid()).pw_name
        self.uid = os.getuid()
        self.home: Path = Path(pwd.getpwuid(os.getuid()).pw_dir)
        self._created_user = False
        names = [f"h{i + 1}" for i in range(n + unreachable)]
        if groups is None:
            groups = {
                "web": [h for i, h in enumerate(names) if i % 2 == 0],
                "db": [h for i, h in enumerate(names) if i % 2 == 1],
            }
        self.groups = groups
        self.sshd_extra = sshd_extra or {}
        """Extra sshd_config lines per host, e.g. ``SetEnv PATH=...`` for a host without cc."""
        self._ports: list[socket.socket] = []
        for i, name in enumerate(names):
            host_dir = self.base / name
            host_dir.mkdir(exist_ok=True)
            self._ports.append(_reserve_port())
            self.hosts.append(TestHost(
                name=name, port=self._ports[-1].getsockname()[1], dir=host_dir,
                groups=[g for g, members in groups.items() if name in members],
                reachable=i < n,
            ))
        self.key = self.base / "id_ed25519"
        self.known_hosts = self.base / "known_hosts"
        self.inventory = self.base / "inventory.ini"

    # ---- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> LocalFleet:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "virtbench-testbed",
             "-f", str(self.key)], check=True,
        )
        if os.getuid() == 0:
            self._create_user()
        self._install_key()
        if os.getuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._host_keys()
        for h in self.hosts:
            if h.reachable:
                self._start_sshd(h)
        for h in self.hosts:
            if h.reachable:
                self._wait_ready(h)
        self.write_inventory()

    @staticmethod
    def _known_name(h: TestHost) -> str:
        return h.address if h.port == 22 else f"[{h.address}]:{h.port}"

    def _create_user(self) -> None:
        self.user = "vbfleet" + secrets.token_hex(3)
        home = self.base / "home"
        subprocess.run(
            ["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh",
             "--no-user-group", "--gid", "nogroup", "--password", "*", self.user],
            check=True, capture_output=True,
        )
        self._created_user = True
        pw = pwd.getpwnam(self.user)
        self.uid = pw.pw_uid
        self.home = home
        # The test user must be able to reach its home under the (root-owned) base dir.
        for p in [self.base, *self.base.parents]:
            if p == Path("/"):
                break
            with contextlib.suppress(OSError):
                os.chmod(p, os.stat(p).st_mode | 0o011)

    def _install_key(self) -> None:
        # A private authorized_keys file (sshd's AuthorizedKeysFile): the user's own
        # ~/.ssh is never touched.
        auth = self.base / "authorized_keys"
        auth.write_text(self.key.with_suffix(".pub").read_text())
        os.chmod(auth, 0o644)
        self._authorized_keys = auth

    def _host_keys(self) -> None:
        """A host key and an sshd configuration per host, and the controller's known_hosts."""
        lines = []
        for h in self.hosts:
            hk = h.dir / "ssh_host_ed25519_key"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hk)],
                           check=True)
            pub = (h.dir / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"{self._known_name(h)} {pub[0]} {pub[1]}")
            (h.dir / "sshd_config").write_text(self._sshd_config(h, hk))
        self.known_hosts.write_text("\n".join(lines) + "\n")

    def _sshd_config(self, h: TestHost, hostkey: Path) -> str:
        return "\n".join([
            f"Port {h.port}",
            f"ListenAddress {h.address}",
            f"HostKey {hostkey}",
            f"PidFile {h.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self._authorized_keys}",
            f"AllowUsers {self.user}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "MaxStartups 200",
            "MaxSessions 50",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
            *self.sshd_extra.get(h.name, []),
            "",
        ])

    def _start_sshd(self, h: TestHost) -> None:
        log = (h.dir / "sshd.log").open("ab")
        h.proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(h.dir / "sshd_config")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        log.close()

    def _wait_ready(self, h: TestHost, timeout: float = 60.0) -> None:
        """Until the host's sshd answers with its banner (60 s: on a loaded machine a
        starting sshd can take seconds to be scheduled; it fails at once if sshd exits)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if h.proc is not None and h.proc.poll() is not None:
                log = (h.dir / "sshd.log").read_text(errors="replace")
                raise RuntimeError(f"sshd for {h.name} exited: {log.strip()[-500:]}")
            try:
                with socket.create_connection((h.address, h.port), timeout=1) as s:
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd for {h.name} did not start on port {h.port}")

    def minimal_path(self, *, without: tuple[str, ...] = ("cc", "gcc", "clang")) -> str:
        """A directory for PATH with the usual programs except ``without`` (a host without a
        C compiler), readable by the test user."""
        d = self.base / "minimal-bin"
        if not d.exists():
            d.mkdir()
            for src in ("/usr/bin", "/bin"):
                for prog in Path(src).iterdir():
                    if prog.name in without or prog.name.startswith(("gcc", "cc", "clang",
                                                                     "x86_64-linux-gnu-gcc")):
                        continue
                    link = d / prog.name
                    if not link.exists():
                        link.symlink_to(prog)
            os.chmod(d, 0o755)
        return str(d)

    def write_inventory(self, extra_host_vars: dict[str, str] | None = None) -> Path:
        """An INI inventory: every host with its port, groups, the user and the key."""
        ssh_args = (f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes "
                    "-o IdentitiesOnly=yes")
        lines = []
        for h in self.hosts:
            hv = {"ansible_host": h.address, "ansible_port": str(h.port), **h.extra_vars}
            if extra_host_vars:
                hv.update(extra_host_vars)
            lines.append(h.name + " " + " ".join(f"{k}={v}" for k, v in hv.items()))
        for g, members in self.groups.items():
            lines += ["", f"[{g}]", *members]
        lines += [
            "", "[all:vars]",
            f"ansible_user={self.user}",
            f"ansible_ssh_private_key_file={self.key}",
            f"ansible_ssh_common_args='{ssh_args}'",
            "",
        ]
        self.inventory.write_text("\n".join(lines))
        return self.inventory

    def host(self, name: str) -> TestHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def kill_host(self, name: str, remote_fragment: str | None = None) -> list[int]:
        """The host "dies": its sshd and every session it serves are killed, and so are the
        processes whose command line contains ``remote_fragment`` (its remote directory)."""
        h = self.host(name)
        killed: list[int] = []
        if h.proc is not None and h.proc.poll() is None:
            kids = _children(h.proc.pid)
            h.proc.kill()
            h.proc.wait()
            _kill(kids)
            killed += [h.proc.pid, *kids]
        if remote_fragment:
            # until a scan finds none: the detached shell may fork the command (or `timeout`
            # its python) after the scan that found it, and one pass left that child running
            # on a "dead" host (a later resume then collected it instead of running it again)
            for _ in range(100):
                pids = pids_with_cmdline(remote_fragment)
                if not pids:
                    break
                _kill(pids)
                killed += [p for p in pids if p not in killed]
                time.sleep(0.05)
        h.reachable = False
        return killed

    def restart_host(self, name: str) -> None:
        """Bring a killed host back (same port, same host key)."""
        h = self.host(name)
        if h.proc is None or h.proc.poll() is not None:
            self._start_sshd(h)
            self._wait_ready(h)
        h.reachable = True

    def close(self) -> None:
        for h in self.hosts:
            if h.proc is not None and h.proc.poll() is None:
                kids = _children(h.proc.pid)
                h.proc.terminate()
                try:
                    h.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    h.proc.kill()
                    h.proc.wait()
                _kill(kids)
        if self._created_user:
            # Whatever the test user still runs (detached commands, async wrappers) goes.
            for _ in range(3):
                pids = _pids_of_uid(self.uid)
                if not pids:
                    break
                _kill(pids)
                time.sleep(0.1)
            subprocess.run(["userdel", "--force", self.user], capture_output=True, check=False)
            self._created_user = False
        self.release_ports()
        shutil.rmtree(self.base, ignore_errors=True)

    def release_ports(self) -> None:
        """Let the hosts' loopback ports go (close(); a NamespaceFleet's hosts use port 22
        in their own namespaces)."""
        for s in self._ports:
            s.close()
        self._ports = []


# ---- a fleet of network namespaces ------------------------------------------------------------
REGISTRY_DIR = Path("/run/virtbench-testbed")
"""One JSON file per live NamespaceFleet: what it created, so that a killed testbed's
leftovers are removed (by its reaper process, or by :func:`clean_stale`)."""

FAULTS = ("dead", "dying", "slow", "full")
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


@dataclass(frozen=True)
class Faults:
    """How many hosts of a NamespaceFleet misbehave, and how."""

    dead: int = 0
    """In the inventory, never answer: their link is down (``No route to host``)."""
    dying: int = 0
    """Die once their fleet command runs: every process of the host is killed and its link
    goes down, ``die_delay`` seconds after a ``run-*/pid`` file appears in their home."""
    slow: int = 0
    """Answer slowly: every SSH session starts ``slow_login`` seconds late, and every
    process of the host gets ``slow_cpu`` of one CPU (a cgroup CPU quota), from the SSH
    handshake to the command."""
    full: int = 0
    """Their home directory is a tmpfs of ``full_kib`` KiB that is full."""
    die_delay: float = 1.0
    slow_cpu: float = 0.25
    slow_login: float = 2.0
    full_kib: int = 512

    @property
    def total(self) -> int:
        return self.dead + self.dying + self.slow + self.full


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def namespaces_available() -> str | None:
    """None when this process can create network namespaces, veth pairs and a bridge; else
    why not (one line)."""
    if os.getuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip program (iproute2) is missing"
    probe = f"vbtbprobe{os.getpid() % 100000}"
    try:
        r = _ip("netns", "add", probe, check=False)
        if r.returncode != 0:
            return f"ip netns add failed: {r.stderr.strip()[:200]}"
        r = _ip("link", "add", probe[:15], "type", "bridge", check=False)
        if r.returncode != 0:
            return f"cannot create a bridge: {r.stderr.strip()[:200]}"
        _ip("link", "del", probe[:15], check=False)
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def _free_subnet() -> str:
    """A /24 in 10.213.0.0/16 that no route of this machine covers (several testbeds may
    run at once); the hosts' traffic never leaves this machine's bridge."""
    import ipaddress
    import random

    used = []
    for line in _ip("-4", "route", "show", "table", "all", check=False).stdout.splitlines():
        dest = line.split()[0] if line.split() else ""
        if dest and dest[0].isdigit():
            with contextlib.suppress(ValueError):
                used.append(ipaddress.ip_network(dest, strict=False))
    for third in random.sample(range(1, 255), 254):
        net = ipaddress.ip_network(f"10.213.{third}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return str(net)
    raise EnvironmentUnsupported("no free /24 left in 10.213.0.0/16 for the testbed")


def _netns_pids(ns: str) -> list[int]:
    r = _ip("netns", "pids", ns, check=False)
    return [int(x) for x in r.stdout.split() if x.isdigit()]


def _kill_netns(*names: str) -> None:
    """Every process in the network namespaces ``names`` is killed (SIGKILL, until none is
    left): one scan of /proc per round for all of them (``ip netns pids`` scans it once per
    namespace: 100 scans for 100 hosts)."""
    inodes = set()
    for ns in names:
        with contextlib.suppress(OSError):
            inodes.add(f"net:[{os.stat(f'/run/netns/{ns}').st_ino}]")
    if not inodes:
        return
    for _ in range(50):
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink(entry / "ns" / "net") in inodes:
                        pids.append(int(entry.name))
        if not pids:
            return
        _kill(pids)
        time.sleep(0.05)


def cleanup_registry(path: Path) -> None:
    """Remove everything a NamespaceFleet recorded in ``path`` (idempotent): processes in its
    namespaces, the namespaces (and so their veth pairs), cgroups, the bridge, the user, the
    base directory, then ``path``."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    _kill_netns(*(str(ns) for ns in rec.get("netns", [])))
    # the host ends of the veth pairs: a namespace goes away asynchronously, its links too
    prefix = str(rec.get("links") or "")
    if prefix:
        for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
            name = line.split(":")[1].strip().split("@")[0] if line.count(":") > 1 else ""
            if name.startswith(prefix):
                _ip("link", "del", name, check=False)
    for ns in rec.get("netns", []):
        _ip("netns", "del", str(ns), check=False)
    for cg in rec.get("cgroups", []):
        with contextlib.suppress(OSError):
            Path(cg).rmdir()
    if rec.get("bridge"):
        _ip("link", "del", str(rec["bridge"]), check=False)
    user = rec.get("user")
    if user:
        with contextlib.suppress(KeyError):
            uid = pwd.getpwnam(str(user)).pw_uid
            for _ in range(3):
                pids = _pids_of_uid(uid)
                if not pids:
                    break
                _kill(pids)
                time.sleep(0.1)
            subprocess.run(["userdel", "--force", str(user)], capture_output=True, check=False)
    if rec.get("base"):
        _unmount_under(Path(str(rec["base"])))
        shutil.rmtree(str(rec["base"]), ignore_errors=True)
    path.unlink(missing_ok=True)


def _unmount_under(base: Path) -> None:
    """Mounts in this mount namespace below ``base`` (none normally: each host's mounts live
    in its own namespace) are detached before the directory is removed."""
    with contextlib.suppress(OSError):
        for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
            parts = line.split()
            if len(parts) > 1 and parts[1].startswith(str(base) + "/"):
                subprocess.run(["umount", "-l", parts[1]], capture_output=True, check=False)


def clean_stale() -> list[str]:
    """Remove the leftovers of every NamespaceFleet whose owner process is gone (killed with
    its reaper, or a machine crash before a reboot cleared /run). Returns their names."""
    done: list[str] = []
    if not REGISTRY_DIR.is_dir():
        return done
    for path in sorted(REGISTRY_DIR.glob("*.json")):
        try:
            pid = int(json.loads(path.read_text()).get("pid", 0))
        except (OSError, ValueError, TypeError):
            pid = 0
        if pid > 0:
            try:
                os.kill(pid, 0)
                continue  # its owner is alive
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        cleanup_registry(path)
        done.append(path.stem)
    return done


def _reap(registry: str, fd: int) -> None:
    """The reaper: blocks until the testbed's process closes the pipe (it exited, however:
    SIGKILL included), then removes whatever the registry still lists. Runs in a session of
    its own, so a Ctrl-C or a signal to the testbed's process group does not stop it."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        while os.read(fd, 64):
            pass
    cleanup_registry(Path(registry))


class NamespaceFleet(LocalFleet):
    """``n`` hosts, each in its own network namespace with its own address (a veth pair on a
    private bridge), its own home directory and its own captured system tree, with faults.

    Each host is one ``sshd`` started with ``ip netns exec`` (which gives it a mount namespace
    of its own) after two bind mounts there: the host's home over the shared home path and
    its system tree over ``root_mount``; so ``virtbench detect --root ROOT_MOUNT`` reports a
    different machine on each host, and everything the host writes stays in its home. Faults
    (:class:`Faults`) go to hosts spread over the fleet (a fixed ``seed`` picks them).

    Needs root. What it creates is listed in a registry file under ``/run/virtbench-testbed``
    before it is created; ``close()`` removes it, and so does a reaper process (its own
    session) when the testbed's process dies without ``close()``: SIGKILL included.
    """

    def __init__(
        self,
        base: Path,
        n: int,
        *,
        faults: Faults = Faults(),
        roots: list[Path] | None = None,
        groups: dict[str, list[str]] | None = None,
        seed: int = 17,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        why = namespaces_available()
        if why is not None:
            raise EnvironmentUnsupported(f"no network namespaces for the testbed: {why}")
        if faults.total > n:
            raise ValueError(f"{faults.total} faulty hosts asked for, only {n} hosts")
        if n > 250:
            raise ValueError("at most 250 hosts (one /24)")
        super().__init__(base, n, groups=groups)
        self.token = secrets.token_hex(3)
        self.prefix = f"vbtb{self.token}"
        self.bridge = self.prefix
        self.net = _free_subnet()
        net3 = self.net.rsplit(".", 1)[0]
        self.gateway = f"{net3}.1"
        self.root_mount = self.base / "root"
        """Where each host sees its own system tree (the same path on every host)."""
        self.faults = faults
        self.on_event = on_event or (lambda _msg: None)
        self.events: list[tuple[float, str]] = []
        rng = random.Random(seed)
        order = rng.sample(range(n), n)
        kinds = (["dead"] * faults.dead + ["dying"] * faults.dying + ["slow"] * faults.slow
                 + ["full"] * faults.full)
        fault_of = dict(zip(order, kinds, strict=False))
        self.release_ports()
        for i, h in enumerate(self.hosts):
            h.address = f"{net3}.{i + 10}"
            h.port = 22
            h.fault = fault_of.get(i)
            h.reachable = h.fault != "dead"
            if roots:
                h.root = roots[i % len(roots)]
        self.registry = REGISTRY_DIR / f"{self.token}.json"
        self._cgroups: list[str] = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self._reaper_w: int | None = None
        self._copies: dict[Path, Path] = {}

    def netns(self, h: TestHost) -> str:
        return f"{self.prefix}-{h.name}"

    def _veth(self, h: TestHost) -> str:
        return f"vb{self.token}{h.name}"[:15]

    def _home_of(self, h: TestHost) -> Path:
        return self.base / "homes" / h.name

    def _record(self) -> None:
        REGISTRY_DIR.mkdir(mode=0o755, exist_ok=True)
        atomic = self.registry.with_suffix(".tmp")
        atomic.write_text(json.dumps({
            "pid": os.getpid(), "base": str(self.base), "bridge": self.bridge,
            "links": f"vb{self.token}",
            "netns": [self.netns(h) for h in self.hosts], "cgroups": self._cgroups,
            "user": self.user if self._created_user else None,
        }))
        atomic.replace(self.registry)

    def _start_reaper(self) -> None:
        r, w = os.pipe()
        pkg_parent = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = pkg_parent + (os.pathsep + env["PYTHONPATH"]
                                          if env.get("PYTHONPATH") else "")
        self._reaper = subprocess.Popen(
            [sys.executable, "-c",
             "import sys; from virtbench.fleet.testbed import _reap; "
             "_reap(sys.argv[1], int(sys.argv[2]))", str(self.registry), str(r)],
            pass_fds=(r,), start_new_session=True, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(r)
        self._reaper_w = w

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._record()
        self._start_reaper()
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "virtbench-testbed",
             "-f", str(self.key)], check=True,
        )
        self._create_user()
        self._record()
        self._install_key()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.root_mount.mkdir()
        os.chmod(self.root_mount, 0o755)
        self._network()
        self._trees()
        self._host_keys()
        for h in self.hosts:
            if h.fault != "dead":
                self._start_sshd(h)
        for h in self.hosts:
            if h.fault != "dead":
                self._wait_ready(h)
        self.write_inventory()
        self._write_faults()
        if any(h.fault == "dying" for h in self.hosts):
            self._watcher = threading.Thread(target=self._watch_dying, daemon=True)
            self._watcher.start()

    def _network(self) -> None:
        """The bridge (the controller's side, with the gateway address) and, per host, a
        namespace with a veth pair: ``eth0`` inside with the host's address."""
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        main: list[str] = []
        for h in self.hosts:
            ns = self.netns(h)
            _ip("netns", "add", ns)
            main.append(f"link add {self._veth(h)} type veth peer name eth0 netns {ns}")
            main.append(f"link set {self._veth(h)} master {self.bridge} up")
        self._batch(main)
        for h in self.hosts:
            cmds = ["link set lo up", f"addr add {h.address}/24 dev eth0"]
            if h.fault != "dead":  # a dead host: its link is down, nothing answers
                cmds.append("link set eth0 up")
            self._batch(cmds, self.netns(h))

    @staticmethod
    def _batch(cmds: list[str], ns: str | None = None) -> None:
        args = ["-n", ns] if ns else []
        proc = subprocess.run(["ip", *args, "-batch", "-"], input="\n".join(cmds) + "\n",
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"ip -batch failed: {proc.stderr.strip()[:300]}")

    def _trees(self) -> None:
        """Each host's home (owned by the test user) and a readable copy of its tree."""
        copies: dict[Path, Path] = {}
        for h in self.hosts:
            home = self._home_of(h)
            home.mkdir(parents=True)
            os.chown(home, self.uid, -1)
            os.chmod(home, 0o755)
            if h.root is not None and h.root not in copies:
                dest = self.base / "roots" / h.root.name
                shutil.copytree(h.root, dest, symlinks=True)
                for dirpath, dirnames, filenames in os.walk(dest):
                    for d in dirnames:
                        with contextlib.suppress(OSError):
                            os.chmod(Path(dirpath) / d, 0o755)
                    for f in filenames:
                        if not (Path(dirpath) / f).is_symlink():
                            with contextlib.suppress(OSError):
                                os.chmod(Path(dirpath) / f, 0o644)
                copies[h.root] = dest
        if copies:
            os.chmod(self.base / "roots", 0o755)
        self._copies = copies

    def _sshd_config(self, h: TestHost, hostkey: Path) -> str:
        text = super()._sshd_config(h, hostkey) + "UseDNS no\n"
        if h.fault == "slow":
            # every session (each Ansible task) starts slow_login seconds late, as with a
            # slow login (reverse DNS, PAM, an overloaded host); sftp through the wrapper
            text = text.replace("Subsystem sftp internal-sftp",
                                f"Subsystem sftp {SFTP_SERVER}")
            text += ("ForceCommand /bin/sh -c 'sleep "
                     f"{self.faults.slow_login:g}; "
                     'exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"\'\n')
        return text

    def _start_sshd(self, h: TestHost) -> None:
        q = shlex.quote
        steps = ["set -e"]
        if h.fault == "full":
            steps += [
                f"mount -t tmpfs -o size={self.faults.full_kib}k,mode=0755,uid={self.uid} "
                f"vbtb-full {q(str(self.home))}",
                f"mkdir {q(str(self.home / '.full'))}",
                f"dd if=/dev/zero of={q(str(self.home / '.full' / 'filler'))} bs=4k "
                "2>/dev/null || true",
            ]
        else:
            steps.append(f"mount --bind {q(str(self._home_of(h)))} {q(str(self.home))}")
        if h.root is not None:
            steps.append(f"mount --bind -o ro {q(str(self._copies[h.root]))} "
                         f"{q(str(self.root_mount))}")
        steps.append(f"exec {SSHD} -D -e -f {q(str(h.dir / 'sshd_config'))}")
        log = (h.dir / "sshd.log").open("ab")
        h.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns(h), "sh", "-c", "\n".join(steps)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )
        log.close()
        if h.fault == "slow":
            self._throttle(h, h.proc.pid)

    def _throttle(self, h: TestHost, pid: int) -> None:
        cpu = Path("/sys/fs/cgroup/cpu")
        unified = Path("/sys/fs/cgroup/cgroup.controllers")
        if (cpu / "cpu.cfs_quota_us").exists():
            cg = cpu / f"{self.prefix}-{h.name}"
            cg.mkdir(exist_ok=True)
            self._cgroups.append(str(cg))
            self._record()
            period = 100_000
            (cg / "cpu.cfs_period_us").write_text(str(period))
            (cg / "cpu.cfs_quota_us").write_text(str(int(period * self.faults.slow_cpu)))
        elif unified.exists() and "cpu" in unified.read_text().split():
            cg = Path("/sys/fs/cgroup") / f"{self.prefix}-{h.name}"
            cg.mkdir(exist_ok=True)
            self._cgroups.append(str(cg))
            self._record()
            (cg / "cpu.max").write_text(f"{int(100_000 * self.faults.slow_cpu)} 100000")
        else:
            raise EnvironmentUnsupported("slow hosts need the cgroup cpu controller")
        (cg / "cgroup.procs").write_text(str(pid))

    def _write_faults(self) -> None:
        (self.base / "faults.json").write_text(json.dumps(
            {h.name: h.fault for h in self.hosts if h.fault}, indent=1) + "\n")

    def _event(self, msg: str) -> None:
        self.events.append((time.time(), msg))
        self.on_event(msg)

    def _pid_files(self, h: TestHost) -> set[Path]:
        home = self._home_of(h)
        found: set[Path] = set()
        for pattern in ("*/run-*/pid", "*/*/run-*/pid", "*/*/*/run-*/pid"):
            found.update(home.glob(pattern))
        return found

    def rearm(self) -> None:
        """The dying hosts come back (link up, sshd started) and die again once a new fleet
        command runs on them."""
        if self._watcher is not None:
            self._stop.set()
            self._watcher.join(timeout=5)
            self._stop.clear()
        for h in self.hosts:
            if h.fault == "dying":
                self.restart_host(h.name)
        self._watcher = threading.Thread(target=self._watch_dying, daemon=True)
        self._watcher.start()

    def _watch_dying(self) -> None:
        """A dying host dies ``die_delay`` s after a fleet command started on it (a new pid
        file in a ``run-*`` directory of its home)."""
        pending = {h.name: h for h in self.hosts if h.fault == "dying"}
        old = {name: self._pid_files(h) for name, h in pending.items()}
        seen: dict[str, float] = {}
        while pending and not self._stop.is_set():
            now = time.monotonic()
            for name, h in list(pending.items()):
                if name not in seen:
                    if self._pid_files(h) - old[name]:
                        seen[name] = now
                elif now - seen[name] >= self.faults.die_delay:
                    self.kill_host(name)
                    self._event(f"{name} died (its command had run for "
                                f"{now - seen[name]:.1f} s)")
                    del pending[name]
            self._stop.wait(0.2)

    def kill_host(self, name: str, remote_fragment: str | None = None) -> list[int]:
        """The host "loses power": its link goes down and every process in its namespace
        (sshd, sessions, the detached command) is killed."""
        h = self.host(name)
        _ip("-n", self.netns(h), "link", "set", "eth0", "down", check=False)
        pids = _netns_pids(self.netns(h))
        _kill_netns(self.netns(h))
        if h.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                h.proc.wait(timeout=5)
        h.reachable = False
        return pids

    def restart_host(self, name: str) -> None:
        h = self.host(name)
        _ip("-n", self.netns(h), "link", "set", "eth0", "up")
        if h.proc is None or h.proc.poll() is not None:
            self._start_sshd(h)
            self._wait_ready(h)
        h.reachable = True

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        _kill_netns(*(self.netns(h) for h in self.hosts))
        for h in self.hosts:
            if h.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    h.proc.wait(timeout=5)
        cleanup_registry(self.registry)
        self._created_user = False
        super().close()
        if self._reaper_w is not None:
            os.close(self._reaper_w)  # the reaper finds no registry and exits
            self._reaper_w = None
        if self._reaper is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._reaper.wait(timeout=10)
