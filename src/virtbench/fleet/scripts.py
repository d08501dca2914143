"""The POSIX shell snippets the playbooks run on targets (through ``raw``/``shell``).

Built here, in Python, with every path quoted, so the playbooks stay tiny. They contain no
Jinja markers (checked), because Ansible templates the strings it is given.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

q = shlex.quote

_PY_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


def _check(script: str) -> str:
    for marker in ("{{", "{%", "{#"):
        if marker in script:
            raise ValueError(f"shell snippet contains the Jinja marker {marker!r}")
    return script


def preflight(interpreter: str | None = None, bundles: str | None = None) -> str:
    """Print ``vb-key=value`` facts: user, home, machine, libc, every Python with its
    version, the C compiler and whether it compiles, the package manager; and, with
    ``bundles`` (a shell word: the host's bundle cache, ``$HOME`` may be in it), the bundles
    it holds (``vb-bundle=HASH``, unchecked: the launch checks the one it needs)."""
    candidates = " ".join(q(p) for p in ([interpreter] if interpreter else []))
    cached = (f'for b in {bundles}/*; do [ -d "$b" ] && echo "vb-bundle=${{b##*/}}"; done\n'
              if bundles else "")
    return _check(f"""
echo "vb-uid=$(id -u)"
echo "vb-home=$HOME"
echo "vb-machine=$(uname -m)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "vb-os=$ID $VERSION_ID"; fi
libc=$(getconf GNU_LIBC_VERSION 2>/dev/null) || libc=
if [ -z "$libc" ] && ldd --version 2>&1 | grep -qi musl; then
  libc="musl $(ldd --version 2>&1 | sed -n 's/^Version //p')"
fi
echo "vb-libc=$libc"
for p in "${{VB_PY:-}}" {candidates} python3 python3.14 python3.13 python3.12 python3.11; do
  [ -n "$p" ] || continue
  path=$(command -v "$p" 2>/dev/null) || continue
  info=$("$path" -c {q(_PY_PROBE)} 2>/dev/null) || continue
  echo "vb-python=$path $info"
done
for c in cc gcc clang; do
  path=$(command -v "$c" 2>/dev/null) || continue
  echo "vb-cc=$path $("$path" --version 2>/dev/null | head -n 1)"
  t=$(mktemp -d 2>/dev/null) || t=/tmp/vb-cc-$$
  mkdir -p "$t"
  printf 'int main(void) {{ return 0; }}\\n' > "$t/t.c" 2>/dev/null
  if "$path" -o "$t/t" "$t/t.c" >/dev/null 2>&1; then echo vb-cc-works=1; fi
  rm -rf "$t"
  break
done
for m in apt-get dnf yum zypper apk pacman; do
  if command -v "$m" >/dev/null 2>&1; then echo "vb-pkg=$m"; break; fi
done
{cached}echo vb-preflight-done
""")


_IS_311 = "-c 'import sys; sys.exit(sys.version_info < (3, 11))'"


def install_deps(pkg: str) -> str | None:
    """Install Python >= 3.11 and a C compiler with ``pkg`` (None: unsupported). No venv
    module (Debian's python3-venv): the target bundle runs on ``PYTHONPATH``, without a venv
    or pip."""
    newer = f"python3 {_IS_311}"
    if pkg == "apt-get":
        return ("export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && "
                "apt-get install -y -qq --no-install-recommends python3 gcc "
                "libc6-dev >/dev/null")
    if pkg in ("dnf", "yum"):
        return (f"{pkg} install -y -q python3 gcc >/dev/null && ({newer} || "
                f"{pkg} install -y -q python3.12 >/dev/null || "
                f"{pkg} install -y -q python3.11 >/dev/null)")
    if pkg == "zypper":
        return (f"zypper -n -q install python3 gcc >/dev/null && ({newer} || "
                "zypper -n -q install python311 >/dev/null)")
    if pkg == "apk":
        return "apk add -q python3 gcc musl-dev"
    if pkg == "pacman":
        return "pacman -Sy --noconfirm --needed python gcc >/dev/null"
    return None


@dataclass(frozen=True)
class RemotePaths:
    base: str
    """Where virtbench keeps its per-host directories on the target."""
    host_dir: str
    """This inventory host's directory for a fleet run: cache and run directories (removed
    after the run unless ``--keep``)."""
    run_dir: str
    """This fleet run's directory: the command's cwd, document, stderr, pid, rc."""

    @property
    def bundles(self) -> str:
        """This host's bundle cache (kept across fleet runs): ``<hash>/`` only."""
        return f"{self.base}/bundles/{self.host_dir.rsplit('/', 1)[-1]}"

    def bundle_dir(self, bundle_hash: str) -> str:
        return f"{self.bundles}/{bundle_hash}"

    def bundle_tar(self, bundle_hash: str) -> str:
        return f"{self.bundles}/{bundle_hash}.tar.gz"


def target_tool(python: str, *args: str) -> str:
    """Run :mod:`virtbench.fleet.target_tool` with the target's Python, isolated (``-I -S``:
    nothing but the standard library is imported), its code sent on the command line."""
    return (f"{q(python)} -I -S -c {q(_TOOL)} " + " ".join(q(a) for a in args)).strip()


def _tool_source() -> str:
    from pathlib import Path

    return (Path(__file__).with_name("target_tool.py")).read_text(encoding="utf-8")


_TOOL = _check(_tool_source())


def _bundle_ready(p: RemotePaths, python: str, bundle_hash: str, tar: str | None,
                  receive: str = "") -> str:
    """Shell lines that end the script unless this host's bundle is intact (``vb-ready=0``
    then asks the controller to ship it): verified by its content hash, or unpacked from the
    shipped tar (``tar``: a shell word naming it, after the ``receive`` lines) and checked
    before it is moved into place."""
    mk = (f"mkdir -p {q(p.run_dir)} {q(p.bundles)} && chmod 700 {q(p.host_dir)} "
          f"{q(p.base + '/bundles')} {q(p.bundles)} || exit 1")
    if tar is not None:
        tool = (target_tool(python) + f" install {tar} "
                + " ".join(q(a) for a in (p.bundle_dir(bundle_hash), bundle_hash)))
        return f'{mk}\n{receive}out=$({tool}) || {{ echo "$out"; exit 1; }}\necho "$out"\n'
    tool = target_tool(python, "verify", p.bundle_dir(bundle_hash), bundle_hash)
    return (f'{mk}\nout=$({tool}) || exit 1\necho "$out"\n'
            'case "$out" in *vb-ready=1*) ;; *) exit 0 ;; esac\n')


def start(p: RemotePaths, python: str, bundle_hash: str, argv: list[str], stdout_name: str,
          *, timeout: int, tar: str | None = None, receive: str = "") -> str:
    """One SSH session per host: check (or, given ``tar``, unpack) the bundle, then start the
    command **detached** (its own session through ``setsid``, every descriptor on files, so
    it runs on whatever happens to the SSH connection or the controller) and print
    ``vb-launched=PID`` once its pid file is there."""
    inner = _command(p, python, bundle_hash, argv, stdout_name, timeout)
    detach = (f"if command -v setsid >/dev/null 2>&1; then "
              f"setsid /bin/sh -c {q(inner)} </dev/null >/dev/null 2>&1 & "
              f"else (trap '' HUP; exec /bin/sh -c {q(inner)}) </dev/null >/dev/null 2>&1 & fi")
    return _check(
        _bundle_ready(p, python, bundle_hash, tar, receive)
        + f"cd {q(p.run_dir)} || exit 1\nrm -f rc rc.tmp pid pid.tmp spid\n{detach}\n"
        "i=0; while [ ! -s pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done\n"
        'if [ -s pid ]; then echo "vb-launched=$(cat pid)"; '
        "else echo 'the command did not start (no pid file after 10 s)'; exit 1; fi\n"
    )


def ship(p: RemotePaths, python: str, bundle_hash: str, argv: list[str], stdout_name: str,
         *, timeout: int) -> str:
    """The ``executable`` of the ``script`` task that ships a bundle: Ansible copies the tar
    into its temporary directory on the target and runs ``EXECUTABLE TAR`` there (raw shell
    sessions and one file transfer, no Python module: about half the controller CPU and
    wall time of the ``copy`` module). It unpacks and checks the tar (removed afterwards),
    then starts the command as :func:`start` does."""
    # the shipped tar is this script's $0 (Ansible's ``script`` runs EXECUTABLE TAR)
    script = start(p, python, bundle_hash, argv, stdout_name, timeout=timeout, tar='"$0"')
    return f"/bin/sh -c {q(script)}"


def ship_stdin(p: RemotePaths, python: str, bundle_hash: str, argv: list[str],
               stdout_name: str, *, timeout: int) -> str:
    """The shell of a ship through the host's open SSH connection (a plain ssh client on the
    connection master Ansible's preflight left, :func:`as_user`: about 4 ms of controller
    CPU where Ansible's ``script`` costs about 78 ms): the tar arrives on stdin, is written
    next to the bundle, then unpacked, checked and the command started as :func:`ship`
    does. ``vb-ship-begin`` says the script ran, ``vb-received=N`` how many bytes arrived."""
    tar = q(p.bundle_tar(bundle_hash))
    receive = (f"echo vb-ship-begin\nif ! cat > {tar}; then rm -f {tar}; exit 1; fi\n"
               f'echo "vb-received=$(wc -c < {tar})"\n')
    return start(p, python, bundle_hash, argv, stdout_name, timeout=timeout, tar=tar,
                 receive=receive)


def as_user(uid: str, script: str) -> str:
    """The remote command of a session the controller opens on a host's SSH master
    (``Engine.on_masters``): ``script`` in ``/bin/sh``, only as the user Ansible's tasks run
    as (``uid``, from the preflight). A session under another user (the inventory asks for
    ``become``) answers ``vb-direct-skipped=1`` before doing anything, and the controller
    leaves the host to Ansible. Every script run so prints a ``vb-`` line before it changes
    anything, so a session lost with no such line is safe to do again through Ansible."""
    guard = f'[ "$(id -u)" = {q(uid)} ] || {{ echo vb-direct-skipped=1; exit 0; }}\n'
    return "/bin/sh -c " + q(_check(guard + script))


def _command(p: RemotePaths, python: str, bundle_hash: str, argv: list[str],
             stdout_name: str, timeout: int) -> str:
    """The detached shell: runs virtbench from the bundle (its ``lib`` on ``PYTHONPATH``, no
    site directories, no byte code written) under ``timeout`` when the target has it, with
    the data and cache directories inside the host directory; records its own pid (``spid``:
    alive until the exit status is written), the command's (``pid``: the process group to
    stop on cancel), then the exit status."""
    lib = p.bundle_dir(bundle_hash) + "/lib"
    cmd = " ".join(q(a) for a in [python, "-S", "-m", "virtbench", *argv])
    env = (f"PYTHONPATH={q(lib)} PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 "
           "PYTHONSAFEPATH=1 VIRTBENCH_FLEET_TARGET=1 "
           f"XDG_CACHE_HOME={q(p.host_dir + '/cache')} "
           f"XDG_DATA_HOME={q(p.run_dir + '/data')}")
    io_ = f"> {q(stdout_name)} 2> stderr.log < /dev/null"
    return (
        f"cd {q(p.run_dir)} || exit 1\necho $$ > spid\n"
        f"if command -v timeout >/dev/null 2>&1; then "
        f"{env} timeout -s TERM {int(timeout)} {cmd} {io_} &\n"
        f"else {env} {cmd} {io_} &\nfi\n"
        "c=$!; echo $c > pid.tmp; mv pid.tmp pid\n"
        "wait $c; echo $? > rc.tmp; mv rc.tmp rc\n"
    )


def poll(p: RemotePaths, python: str, document: str) -> str:
    """``vb-state=running|done|dead|missing``: while the command runs, shell builtins and
    ``cat`` only, nothing that loads the measured host. Once it ended (``done``: ``vb-rc=N``;
    ``dead``: no exit status), the same session collects: the document in base64 between
    ``vb-doc-begin``/``vb-doc-end``, the last 2 KB of stderr after ``vb-stderr-begin``. It
    removes nothing: the controller removes the run's files in a session of its own once it
    has saved the document (:func:`cleanup`), so an answer lost on the way (a Ctrl-C, a
    dropped connection) is given again by the next poll."""

    b64 = target_tool(python, "b64", p.run_dir + "/" + document)
    return _check(
        f"cd {q(p.run_dir)} 2>/dev/null || {{ echo vb-state=missing; exit 0; }}; "
        # the launching shell (spid) outlives the command until rc is written (runs that
        # Ansible's async wrapper launched, for an older virtbench, have pid only); rc is
        # checked again after it, in case it was written in between
        "if [ -f rc ]; then st=done; else l=pid; if [ -f spid ]; then l=spid; fi; "
        "if [ -f \"$l\" ] && [ -d \"/proc/$(cat \"$l\")\" ]; then "
        "echo vb-state=running; exit 0; fi; "
        "st=dead; if [ -f rc ]; then st=done; fi; fi; "
        'echo "vb-state=$st"; if [ -f rc ]; then echo "vb-rc=$(cat rc)"; fi; '
        f"echo \"vb-doc=$(wc -c < {q(document)} 2>/dev/null)\"; "
        f"echo vb-doc-begin; {b64}; echo vb-doc-end; "
        "echo vb-stderr-begin; tail -c 2000 stderr.log 2>/dev/null; echo; echo vb-stderr-end"
    )


def between(stdout: str, begin: str, end: str) -> str:
    """The text between two marker lines of a snippet's output (``\r`` removed)."""
    text = stdout.replace("\r", "")
    i = text.find(begin + "\n")
    if i < 0:
        return ""
    j = text.find("\n" + end, i + len(begin))
    return text[i + len(begin) + 1:j if j >= 0 else len(text)]


def cleanup(p: RemotePaths, job_file: str | None) -> str:
    """Remove this host's directory (its compile cache and run directories) and, for a run
    launched by an older virtbench, Ansible's async job file; the bundle stays (the next fleet
    run checks it and ships nothing). Prints ``vb-removed=1`` once the host's directory is
    gone, else ``vb-not-removed=`` with ``rm``'s last error line."""
    d = q(p.host_dir)
    parts = [f"vb_err=$(rm -rf {d} 2>&1)",
             f"if [ -e {d} ]; then "
             'echo "vb-not-removed=$(printf \'%s\\n\' "$vb_err" | tail -n 1)"; '
             "else echo vb-removed=1; fi",
             f"rmdir {q(p.base)} 2>/dev/null"]
    if job_file:
        parts.append(f"rm -f {q(job_file)}")
    return _check("; ".join(parts) + "; true")


STOP_GRACE_S = 5
"""Seconds between the SIGTERM of ``fleet cancel`` and the SIGKILL of what is left."""

# The live processes of the detached command, one pid a line, read from /proc with shell
# builtins (every target is Linux; busybox's ps has no -p). By session when the detached
# shell leads one (``setsid``): the shell, ``timeout``, virtbench, its compilers and its
# copies (which lead process groups of their own). Else by the command's process group, plus
# the launching shell. Zombies run nothing and are left out.
_MEMBERS = """\
vb_members() {
  for vb_d in /proc/[0-9]*; do
    { read -r vb_s < "$vb_d/stat"; } 2>/dev/null || continue
    vb_p=${vb_d#/proc/}; vb_s=${vb_s##*) }; set -- $vb_s
    [ "$1" = Z ] && continue
    if [ -n "$vb_sid" ]; then [ "$4" = "$vb_sid" ] || continue
    else [ "$3" = "$vb_g" ] || [ "$vb_p" = "$vb_l" ] || continue; fi
    echo "$vb_p"
  done
}
vb_stat() {  # PID N: its process group (N=3) or session (N=4)
  vb_n=$2; { read -r vb_s < "/proc/$1/stat"; } 2>/dev/null || return 1
  vb_s=${vb_s##*) }; set -- $vb_s
  case $vb_n in 3) echo "$3" ;; 4) echo "$4" ;; esac
}
"""


def cancel(p: RemotePaths, job_file: str | None, *, keep: bool) -> str:
    """Stop the detached command, then (unless ``keep``) the clean up.

    SIGTERM to the command it recorded (``timeout``: it passes the signal on to virtbench and
    its process group, as when its time is up, and virtbench stops its copies), SIGKILL after
    ``STOP_GRACE_S`` seconds to every process of the command's session still there (copies
    whose virtbench died first included). The clean up starts once none is left, the
    launching shell included (it writes the exit status into the run directory).
    Prints ``vb-cancelled=1`` when a running command was stopped, ``vb-left=N`` when N of its
    processes were still there after the SIGKILL (nothing is removed then), ``vb-ended=RC``
    when it had ended, ``vb-gone=1`` when it had died without an exit status.

    Each process gets one SIGTERM: a second one would cut virtbench's own clean up short.
    (No ``kill -- -PGID``: dash's ``kill`` takes ``--`` for a pid, fails, and stopped nothing.)"""
    grace = STOP_GRACE_S * 2
    kill = _MEMBERS + f"""\
vb_left=
if cd {q(p.run_dir)} 2>/dev/null && [ -f pid ] && [ ! -f rc ]; then
  vb_c=$(cat pid); vb_l=$(cat spid 2>/dev/null); vb_sid=; vb_g=
  if [ -n "$vb_l" ] && [ "$(vb_stat "$vb_l" 4)" = "$vb_l" ]; then vb_sid=$vb_l
  elif [ -n "$vb_l" ] && [ "$(vb_stat "$vb_c" 4)" = "$vb_l" ]; then vb_sid=$vb_l
  else vb_g=$(vb_stat "$vb_c" 3); fi
  # never this shell's own session or group
  if [ -n "$vb_sid" ] && [ "$vb_sid" = "$(vb_stat $$ 4)" ]; then vb_sid=; fi
  if [ -n "$vb_g" ] && [ "$vb_g" = "$(vb_stat $$ 3)" ]; then vb_g=; fi
  if [ -n "$vb_sid$vb_g" ]; then
    vb_run=$(vb_members); vb_had=$vb_run
    if [ -n "$vb_run" ] && [ -d "/proc/$vb_c" ]; then kill -TERM "$vb_c" 2>/dev/null; fi
    t=0
    while [ -n "$vb_run" ] && [ $t -lt {grace} ]; do
      sleep 0.5; t=$((t+1)); vb_run=$(vb_members); done
    if [ -n "$vb_run" ]; then
      kill -KILL $vb_run 2>/dev/null; t=0
      while [ -n "$vb_run" ] && [ $t -lt 25 ]; do
        sleep 0.2; t=$((t+1)); vb_run=$(vb_members); done
    fi
    if [ -n "$vb_run" ]; then vb_left=$(echo $vb_run | wc -w); echo "vb-left=$vb_left"
    elif [ -n "$vb_had" ]; then echo vb-cancelled=1; else echo vb-gone=1; fi
  else echo vb-gone=1
  fi
elif [ -f rc ]; then echo "vb-ended=$(cat rc)"
fi
cd /
"""
    if keep:
        return _check(kill + "true\n")
    return _check(kill + f'if [ -z "$vb_left" ]; then {cleanup(p, job_file)}; fi\n')


def parse_facts(stdout: str) -> dict[str, list[str]]:
    """``vb-key=value`` lines of a snippet's output (``\\r`` from a tty removed)."""
    out: dict[str, list[str]] = {}
    for line in stdout.replace("\r", "").splitlines():
        if line.startswith("vb-"):
            k, _, v = line[3:].partition("=")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def after_marker(stdout: str, marker: str) -> str:
    text = stdout.replace("\r", "")
    i = text.find(marker)
    return text[i + len(marker):].strip("\n") if i >= 0 else ""
