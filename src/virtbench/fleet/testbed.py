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
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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
        for i, name in enumerate(names):
            host_dir = self.base / name
            host_dir.mkdir(exist_ok=True)
            self.hosts.append(TestHost(
                name=name, port=_free_port(), dir=host_dir,
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
        lines = []
        for h in self.hosts:
            hk = h.dir / "ssh_host_ed25519_key"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hk)],
                           check=True)
            pub = (h.dir / "ssh_host_ed25519_key.pub").read_text().split()
            lines.append(f"[127.0.0.1]:{h.port} {pub[0]} {pub[1]}")
            (h.dir / "sshd_config").write_text(self._sshd_config(h, hk))
        self.known_hosts.write_text("\n".join(lines) + "\n")
        for h in self.hosts:
            if h.reachable:
                self._start_sshd(h)
        for h in self.hosts:
            if h.reachable:
                self._wait_ready(h)
        self.write_inventory()

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

    def _sshd_config(self, h: TestHost, hostkey: Path) -> str:
        return "\n".join([
            f"Port {h.port}",
            "ListenAddress 127.0.0.1",
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

    def _wait_ready(self, h: TestHost, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if h.proc is not None and h.proc.poll() is not None:
                log = (h.dir / "sshd.log").read_text(errors="replace")
                raise RuntimeError(f"sshd for {h.name} exited: {log.strip()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", h.port), timeout=1) as s:
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
            hv = {"ansible_host": "127.0.0.1", "ansible_port": str(h.port), **h.extra_vars}
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
            pids = pids_with_cmdline(remote_fragment)
            _kill(pids)
            killed += pids
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
        shutil.rmtree(self.base, ignore_errors=True)
