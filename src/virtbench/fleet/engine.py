"""Drive a fleet run through Ansible (ansible-runner), phase by phase.

1. **preflight** (``raw``, no Python needed): Python >= 3.11, a working C compiler.
   ``--install-deps`` installs what is missing with the OS package manager, then checks again.
   It leaves one SSH connection master per host open (Ansible's ``ControlPersist``), named
   by the inventory host: the phases below open their sessions on it with a plain ssh
   client (:meth:`Engine.on_masters`), no Ansible task, wherever they can (not under
   ``become``, not when the user's configuration owns SSH multiplexing, not when the
   master is gone); otherwise each is an Ansible play, as it was.
2. **launch**: one session checks the host's cached target bundle by its content hash and
   starts the command detached (``setsid``): it runs on the target whatever happens to the
   SSH connection or the controller. Hosts without an intact bundle then get it: the ssh
   client sends the tar to a shell that unpacks it, checks it and starts the command (or a
   playbook of their own, **ship**, whose ``script`` task copies the tar and runs the same
   shell).
3. **poll** every ``poll_interval`` seconds from the controller: one short SSH session that
   runs ``cat``/``test`` in a shell, nothing else, while the target measures. A host whose
   command ended answers in the same session with its document (base64) and the end of its
   stderr; the document is saved and imported into the store labelled with the host, its
   groups and the fleet run id, then a session of its own removes the host's run files
   (unless ``--keep``): an answer lost before the save is given again by the next poll.

Every SSH task is ``raw`` or ``script``: no module to build, send and run on the target
(docs/fleet.md, "Ansible at 100 hosts"). Each Ansible phase is one ``ansible-playbook`` run
over the hosts that need it, with the user's own
inventory, SSH config, ``become`` and ``forks``; ``forks`` bounds the SSH work in flight, not
the number of hosts measuring at once (all launched hosts run together). Every host
transition is saved to the fleet state at once, so a crash or Ctrl-C loses nothing: hosts
still running keep running on their targets and ``fleet resume`` re-attaches to them.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.fleet import bundle as bundlemod
from virtbench.fleet import scripts
from virtbench.fleet.ansible import ansible_env, control_dir, control_name, control_path_var
from virtbench.fleet.display import Display
from virtbench.fleet.state import FleetState, HostState, utc_now
from virtbench.safeio import atomic_write

PLAYBOOKS = Path(__file__).parent / "playbooks"
RESULT_EVENTS = {
    "runner_on_ok": "ok", "runner_on_failed": "failed", "runner_on_unreachable": "unreachable",
    "runner_on_skipped": "skipped",
}


@dataclass
class Options:
    install_deps: bool = False
    keep: bool = False
    become: bool = False
    deps: str = "index"
    """``index``: targets pip-install dependencies from their own index; ``ship``: the
    controller downloads wheels for each target platform and ships them."""
    poll_interval: float = 30.0
    """Seconds between two polls of a running host (one tiny SSH session each)."""
    timeout: int = 86400
    """Seconds after which Ansible's async wrapper kills the remote command."""
    lost_polls: int = 3
    """Consecutive unreachable polls after which a running host is reported failed."""
    remote_dir: str | None = None
    """Base directory on targets (default ``$HOME/.cache/virtbench-fleet``)."""
    output_option: bool = False
    """The command takes ``--output`` (the CLI's parser said so when the run started): it
    writes its document there after every step; otherwise its ``--json`` stdout is kept."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Options:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TaskResult:
    status: str
    """``ok``, ``failed``, ``unreachable`` or ``skipped``."""
    res: dict[str, Any]

    @property
    def stdout(self) -> str:
        return str(self.res.get("stdout") or "")

    def message(self) -> str:
        """One line saying why the task failed."""
        r = self.res
        full = _resource_error(r)
        if full is not None:
            return full
        for key in ("msg", "stderr", "stdout", "module_stderr", "module_stdout"):
            val = r.get(key)
            if isinstance(val, str) and val.strip():
                lines = [ln.strip() for ln in val.replace("\r", "").splitlines() if ln.strip()
                         and not ln.startswith(("vb-", "Shared connection"))]
                if lines:
                    text = lines[-1] if key != "msg" else lines[0]
                    for noise in ("Task failed: ", "Failed to connect to the host via ssh: "):
                        if key == "msg" and text.startswith(noise):
                            text = text[len(noise):]
                    if "rc" in r and key != "msg":
                        return f"exit status {r['rc']}: {text}"[:300]
                    return text[:300]
        if "rc" in r:
            return f"exit status {r['rc']}"
        return "failed"


RESOURCE_ERRORS = (("No space left on device", "disk full"),
                   ("Disk quota exceeded", "disk quota exceeded"),
                   ("Read-only file system", "read-only file system"))
"""Target-side errors named first, whatever the task (copy, install, launch)."""

SESSION_TIMEOUT_S = 900
"""A launch, ship or clean up on a host's SSH master (:meth:`Engine.on_masters`) that has
not ended after this long is stopped; the SSH keepalives end a dead host's session long
before."""
POLL_TIMEOUT_S = 60
"""As poll.yml's ``timeout``: a poll is a few shell builtins; a host that cannot answer in
this time is counted as a lost poll rather than holding up the poll round."""

SLOW_FACTOR = 2.0
SLOW_ANSWER_S = 1.0
"""A host is named slow to answer when its quickest task took more than SLOW_FACTOR times
the fleet's median quickest task and SLOW_ANSWER_S seconds more."""


def _resource_error(res: dict[str, Any]) -> str | None:
    """``disk full: <the line that says so>`` when a result mentions ENOSPC and the like."""
    for key in ("msg", "stderr", "stdout", "module_stderr", "module_stdout"):
        val = res.get(key)
        if not isinstance(val, str):
            continue
        for line in val.replace("\r", "").splitlines():
            for needle, what in RESOURCE_ERRORS:
                if needle in line:
                    return f"{what} on the target: {line.strip()[:240]}"
    return None


@dataclass
class _Timings:
    """Per host, from Ansible's per-task durations during one playbook run."""

    busy: dict[str, float]
    """Seconds each host spent in its tasks."""
    fastest: dict[str, float] = field(default_factory=dict)
    """Each host's quickest successful task: how long it takes to answer at all."""

    def add(self, kind: str, host: str, duration: Any) -> None:
        # a host that did not answer is not slow: an unreachable task's duration is SSH's
        # timeout (a dying host's lost polls would name it slow too)
        if not isinstance(duration, (int, float)) or host not in self.busy or \
                kind == "runner_on_unreachable":
            return
        self.busy[host] += float(duration)
        if kind == "runner_on_ok":
            self.fastest[host] = min(self.fastest.get(host, float(duration)), float(duration))


Outcomes = dict[str, dict[str, TaskResult]]
Live = Callable[[str, str, str, dict[str, Any]], None]


class Interrupted(Exception):
    """The user interrupted the controller (Ctrl-C / SIGTERM)."""


class Engine:
    def __init__(self, state: FleetState, display: Display) -> None:
        self.state = state
        self.display = display
        self.opts = Options.from_dict(state.options)
        self.lock = threading.RLock()
        self._cancel = threading.Event()
        self._bundles: dict[str, bundlemod.Bundle] = {}
        self.private_dir = state.dir / "runner"
        self._facts_pkg: dict[str, tuple[str, str]] = {}
        """Per host: (package manager, uid) from the preflight."""
        self._cached: dict[str, set[str]] = {}
        """Per host: the bundles (hashes) its cache held at the preflight, unchecked."""
        self._batching = 0
        self._dirty = False

    # ---- state ------------------------------------------------------------------------------
    def update(self, name: str, status: str | None = None, **fields: Any) -> HostState:
        with self.lock:
            h = self.state.hosts[name]
            if status is not None:
                h.status = status
            for k, v in fields.items():
                setattr(h, k, v)
            h.updated = utc_now()
            if self._batching:
                self._dirty = True
            else:
                self.state.save()
        self.display.host(h)
        return h

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Host updates made inside are saved once, at the end: a loop over 100 hosts would
        otherwise rewrite (and fsync) the whole state file 100 times. Only for loops with no
        effect outside the controller between two updates (before a playbook, or over the
        results of one that ended)."""
        with self.lock:
            self._batching += 1
        try:
            yield
        finally:
            with self.lock:
                self._batching -= 1
                if not self._batching and self._dirty:
                    self._dirty = False
                    self.state.save()

    def fail(self, name: str, reason: str, **fields: Any) -> None:
        self.update(name, "failed", reason=reason, **fields)

    # ---- Ansible --------------------------------------------------------------------------
    def play(self, playbook: str, hosts: list[str], plan: dict[str, dict[str, Any]],
             live: Live | None = None, extravars: dict[str, Any] | None = None) -> Outcomes:
        """Run one playbook over ``hosts``; per host, per task, the last result."""
        import ansible_runner

        outcomes: Outcomes = {}
        if not hosts:
            return outcomes
        timings = _Timings(dict.fromkeys(hosts, 0.0))

        def handler(ev: dict[str, Any]) -> bool:
            kind = ev.get("event", "")
            data = ev.get("event_data") or {}
            host = data.get("host")
            task = str(data.get("task") or "")
            if kind in RESULT_EVENTS and host:
                outcomes.setdefault(host, {})[task] = TaskResult(
                    RESULT_EVENTS[kind], data.get("res") or {})
                timings.add(kind, host, data.get("duration"))
            if live is not None and host:
                try:
                    live(kind, host, task, data)
                except Exception as exc:  # a display/state problem must not stop Ansible
                    self.display.note(f"fleet: internal error handling {kind} for {host}: {exc}")
            return kind not in ("runner_on_ok", "verbose", "playbook_on_task_start") or not host

        self.private_dir.mkdir(parents=True, exist_ok=True)
        limit_file = self.private_dir / f"limit-{playbook}.txt"
        atomic_write(limit_file, "\n".join(hosts) + "\n")
        # SSH masters outlive a poll interval: a poll reuses its host's connection
        env = ansible_env(persist=int(max(60.0, 2 * self.opts.poll_interval + 30)))
        env.setdefault("ANSIBLE_DEPRECATION_WARNINGS", "False")
        env.setdefault("ANSIBLE_PYTHON_INTERPRETER", "auto_silent")
        # Extra vars go through a file (-e @file): plans for many hosts would make a long,
        # world-readable command line.
        vars_file = self.private_dir / f"vars-{playbook}.json"
        # each host's SSH master under a name the controller knows (ship_direct uses it)
        atomic_write(vars_file, json.dumps({"vb_plan": plan,
                                            "vb_timeout": int(self.opts.timeout),
                                            **control_path_var(hosts),
                                            **(extravars or {})}), mode=0o600)
        cmdline = f"-e @{shlex.quote(str(vars_file))}"
        if self.opts.become:
            cmdline += " --become"
        thread, runner = ansible_runner.run_async(
            private_data_dir=str(self.private_dir),
            ident=f"{int(time.time() * 1000)}-{playbook}",
            playbook=str(PLAYBOOKS / f"{playbook}.yml"),
            inventory=self.state.inventory,
            limit=f"@{limit_file}",
            forks=self.state.forks,
            envvars=env,
            cmdline=cmdline,
            event_handler=handler,
            cancel_callback=self._cancel.is_set,
            quiet=True,
            rotate_artifacts=30,
            suppress_env_files=True,
        )
        try:
            while thread.is_alive():
                thread.join(0.25)
                self.display.tick()
        except KeyboardInterrupt:
            self._cancel.set()
            thread.join()
            raise Interrupted() from None
        finally:
            self._add_busy(timings.busy, timings.fastest)
        if runner.status in ("failed", "error") and not outcomes:
            self._playbook_failed(playbook, runner)
        return outcomes

    def _playbook_failed(self, playbook: str, runner: Any) -> None:
        """ansible-playbook failed before any host had a result: its first ERROR line."""
        stdout = ""
        with contextlib.suppress(OSError):
            stdout = Path(runner.config.artifact_dir, "stdout").read_text(errors="replace")
        errs = [ln.strip() for ln in stdout.splitlines() if "ERROR" in ln]
        raise EnvironmentUnsupported(
            f"ansible-playbook {playbook} failed: "
            + (errs[0] if errs else f"status {runner.status} (see {self.private_dir})")
        )

    def _add_busy(self, busy: dict[str, float], fastest: dict[str, float]) -> None:
        """Add each host's task seconds to its state (one save for the whole play)."""
        with self.lock:
            for n, secs in busy.items():
                h = self.state.hosts.get(n)
                if h is not None and secs > 0:
                    h.ssh_seconds = round(h.ssh_seconds + secs, 2)
                if h is not None and n in fastest:
                    h.ssh_fastest = round(min(h.ssh_fastest or fastest[n], fastest[n]), 3)
            self.state.save()

    def name_slow_hosts(self) -> list[str]:
        """Hosts slow to answer: whose quickest successful SSH task (a poll: a few shell
        builtins) took far longer than that of the fleet's median host with a fetched
        document (complete or partial: it went through every phase). Their ``slow`` note
        says so (a fetched host keeps its result; a failed one its reason too).

        Not the total task time: after a resume, re-attached hosts only poll and collect
        while restarted ones go through every phase, and on a loaded controller every host
        is slow; the quickest task measures the host's own latency."""
        done = [h for h in self.state.hosts.values()
                if h.document is not None and h.ssh_fastest is not None]
        slow = []
        with self.lock:
            for h in self.state.hosts.values():
                h.slow = None
            if len(done) >= 3:
                median = statistics.median(h.ssh_fastest or 0.0 for h in done)
                for h in done:
                    if (h.ssh_fastest or 0.0) > max(SLOW_FACTOR * median,
                                                    median + SLOW_ANSWER_S):
                        h.slow = (f"slow to answer: its quickest SSH task took "
                                  f"{h.ssh_fastest:.1f} s, the fleet median {median:.1f} s")
                        slow.append(h.name)
            self.state.save()
        return slow

    # ---- phases -----------------------------------------------------------------------------
    def run(self, names: list[str]) -> None:
        """Bring every host in ``names`` to ``fetched`` or ``failed``."""
        attach = [n for n in names if self._attachable(self.state.hosts[n])]
        fresh = [n for n in names if n not in attach]
        with self.batch():
            for n in fresh:
                self.update(n, "queued", reason=None, rc=None, document=None, cleaned=False,
                            lost_polls=0, stderr_tail=None)
        if attach:
            self.display.note(f"fleet: re-attaching to {len(attach)} host(s) whose command "
                              "was started earlier")
            restart = self.reattach(attach)
            with self.batch():
                for n in restart:
                    self.update(n, "queued", reason=None, job_id=None, run_dir=None)
            fresh += restart
        ready = self.preflight(fresh)
        running = self.launch(ready)
        # a re-attached host that was started again is in ``running`` already: polled twice
        # a round, it was collected twice (its run id listed twice; a `detect` report,
        # which has no id of its own, imported as two runs)
        self.wait(running + [n for n in attach if self.state.hosts[n].status == "running"
                             and n not in running])
        self.name_slow_hosts()

    @staticmethod
    def _attachable(h: HostState) -> bool:
        """Was this host's command launched (and not collected), so it may still be there?"""
        return bool(h.run_dir) and h.status in ("running", "fetching", "failed") and \
            bool(h.job_id) and not h.cleaned and h.document is None

    def reattach(self, names: list[str]) -> list[str]:
        """Poll hosts launched by an earlier controller: running ones are waited for, finished
        ones collected; those whose command is gone are returned to be started again."""
        with self.batch():
            for n in names:
                self.update(n, "running", reason=None, lost_polls=0)
        states = self.poll(names, tolerate_lost=False)
        restart = []
        for n in names:
            h = self.state.hosts[n]
            if h.status in ("fetched", "running") or states.get(n) == "lost":
                continue
            restart.append(n)  # gone, died or failed: start it again
        return restart

    def preflight(self, names: list[str]) -> list[str]:
        if not names:
            return []
        with self.batch():
            for n in names:
                self.update(n, "checking", reason=None)
        plan = {n: {"script": scripts.preflight(None, self._bundles_word(n))} for n in names}
        out = self.play("preflight", names, plan)
        ready: list[str] = []
        need: dict[str, str] = {}
        with self.batch():
            for n in names:
                res = out.get(n, {}).get("vb:preflight")
                problem = self._check_preflight(n, res)
                if problem is None:
                    ready.append(n)
                    continue
                missing, reason = problem
                if missing and self.opts.install_deps:
                    need[n] = reason
                else:
                    hint = "; rerun with --install-deps" if missing else ""
                    self.fail(n, reason + hint)
        if need:
            ready += self.install_deps(need)
        return ready

    def _bundles_word(self, name: str) -> str:
        """The host's bundle cache as a shell word for the preflight (before ``$HOME`` is
        known): as :meth:`paths_for` will name it."""
        host = scripts.q(_safe(name))
        if self.opts.remote_dir:
            return f"{scripts.q(self.opts.remote_dir)}/bundles/{host}"
        return f'"$HOME"/.cache/virtbench-fleet/bundles/{host}'

    def _check_preflight(self, name: str, res: TaskResult | None) -> tuple[bool, str] | None:
        """None when the host is ready; else (fixable by --install-deps, reason)."""
        if res is None:
            return False, "no answer from Ansible (host not in inventory?)"
        if res.status == "unreachable":
            msg = res.message()
            return False, f"unreachable: {msg}{ssh_hint(msg)}"
        if res.status != "ok":
            return False, f"preflight failed: {res.message()}"
        facts = scripts.parse_facts(res.stdout)
        if "preflight-done" not in facts:
            return False, "preflight printed nothing (is /bin/sh there?)"
        machine = (facts.get("machine") or ["?"])[0]
        libc = (facts.get("libc") or [""])[0]
        pythons = []
        for line in facts.get("python", []):
            path, _, rest = line.partition(" ")
            ver = rest.partition(" ")[0]
            try:
                major, minor = (int(x) for x in ver.split(".")[:2])
            except ValueError:
                continue
            pythons.append((path, ver, (major, minor)))
        good = [p for p in pythons if p[2] >= (3, 11)]
        cc = (facts.get("cc") or [""])[0]
        cc_ok = "cc-works" in facts
        home = (facts.get("home") or [""])[0]
        uid = (facts.get("uid") or [""])[0]
        fields: dict[str, Any] = {"machine": machine, "compiler": cc.partition(" ")[2] or None}
        if good:  # the first Python >= 3.11
            fields["python"] = good[0][0]
            fields["python_version"] = good[0][1]
        fields["platform"] = libc or None
        base = self.opts.remote_dir or (f"{home}/.cache/virtbench-fleet" if home else None)
        if base:
            host_dir = f"{base}/{_safe(name)}"
            fields["remote_dir"] = host_dir
        self._facts_pkg[name] = ((facts.get("pkg") or [""])[0], uid)
        self._cached[name] = set(facts.get("bundle", []))
        self.update(name, **fields)
        problems = []
        if not good:
            found = ", ".join(f"{p[0]} {p[1]}" for p in pythons) or "none"
            problems.append(f"no Python >= 3.11 (found: {found})")
        if not cc:
            problems.append("no C compiler (cc, gcc or clang)")
        elif not cc_ok:
            problems.append(f"the C compiler {cc.split()[0]} cannot build a test program "
                            "(C library headers missing? install libc6-dev / glibc-devel)")
        if not base:
            problems.append("no $HOME on the target: pass --remote-dir")
            return False, "; ".join(problems)
        if problems:
            return True, "; ".join(problems)
        return None

    def install_deps(self, need: dict[str, str]) -> list[str]:
        plan: dict[str, dict[str, Any]] = {}
        for n, reason in need.items():
            pkg, uid = self._facts_pkg.get(n, ("", ""))
            script = scripts.install_deps(pkg)
            if script is None:
                self.fail(n, f"{reason}; --install-deps: no known package manager on the host")
                continue
            self.update(n, "installing", reason=f"installing Python/C compiler with {pkg}")
            plan[n] = {"script": script, "become": uid != "0"}
        out = self.play("deps", list(plan), plan)
        again = []
        for n in plan:
            res = out.get(n, {}).get("vb:deps")
            if res is None or res.status != "ok":
                why = res.message() if res else "no answer"
                self.fail(n, f"{need[n]}; --install-deps failed: {why}")
            else:
                again.append(n)
        if not again:
            return []
        saved = self.opts.install_deps
        self.opts.install_deps = False  # check once more; do not loop
        try:
            return self.preflight(again)
        finally:
            self.opts.install_deps = saved

    def _bundle_for(self, h: HostState) -> bundlemod.Bundle:
        pyver = ".".join((h.python_version or "3.11").split(".")[:2])
        tags = bundlemod.platform_tags(h.machine or "x86_64", h.platform or "glibc 2.17")
        key = f"{pyver}|{tags[0]}"
        if key not in self._bundles:
            b = bundlemod.build(pyver, tags)
            self.display.note(f"fleet: target bundle {b.key} for Python {pyver} ({tags[0]}): "
                              f"{b.size / 1e6:.1f} MB, shipped only to hosts without it")
            self._bundles[key] = b
        return self._bundles[key]

    def paths_for(self, h: HostState) -> scripts.RemotePaths:
        assert h.remote_dir is not None
        base = h.remote_dir.rsplit("/", 1)[0]
        return scripts.RemotePaths(base=base, host_dir=h.remote_dir,
                                   run_dir=f"{h.remote_dir}/run-{self.state.id}")

    def _launch_plan(self, n: str, b: bundlemod.Bundle) -> dict[str, Any]:
        from virtbench.fleet.command import remote_command

        h = self.state.hosts[n]
        p = self.paths_for(h)
        argv, stdout_name, _document = remote_command(self.state.command, p.run_dir,
                                                      self.opts.output_option)
        python = h.python or "python3"
        timeout = int(self.opts.timeout)
        return {
            "start": scripts.start(p, python, b.hash, argv, stdout_name, timeout=timeout),
            "bundle_local": shlex.quote(str(b.path)),
            "ship": scripts.ship(p, python, b.hash, argv, stdout_name, timeout=timeout),
        }

    def launch(self, names: list[str]) -> list[str]:
        """Start the command on each host: one SSH session (``vb:start``) when the host's
        cached bundle is intact. The hosts without it (the preflight found none, or the one
        there failed its check) get it through the SSH connection the preflight left open
        (:meth:`ship_direct`: a plain ssh client on Ansible's master sends the tar, unpacks
        it and starts the command); those it cannot serve (no master, ``become``) from a
        second playbook, whose ``vb:ship`` copies it, unpacks it and starts the command (a
        playbook of its own rather than skipped tasks: a skipped task costs the controller
        about 11 ms per host, a playbook's start about 0.5 s: bench/fleet_costs.py)."""
        plan: dict[str, dict[str, Any]] = {}
        bundles: dict[str, bundlemod.Bundle] = {}
        with self.batch():
            for n in names:
                h = self.state.hosts[n]
                try:
                    b = self._bundle_for(h)
                except EnvironmentUnsupported as exc:
                    self.fail(n, str(exc))
                    continue
                plan[n] = self._launch_plan(n, b)
                bundles[n] = b
                self.update(n, "installing", reason=None, run_dir=self.paths_for(h).run_dir,
                            job_id=None, job_file=None, document=None, rc=None, bundle=b.hash)

        def live(kind: str, host: str, task: str, data: dict[str, Any]) -> None:
            res = data.get("res") or {}
            if host in plan and kind in ("runner_on_ok", "runner_on_failed"):
                # the script ran (it has an exit status): its tar had been copied
                shipped = bundles[host].size if task == "vb:ship" and "rc" in res else 0
                self._launched(host, task, kind == "runner_on_ok",
                               str(res.get("stdout") or ""), shipped)

        # a host whose cache did not hold the bundle at the preflight gets it at once (no
        # vb:start to find that out again); the others check the copy they have
        direct = [n for n in plan if n in self._cached
                  and self.state.hosts[n].bundle not in self._cached[n]]
        start = [n for n in plan if n not in direct]
        out: Outcomes = {}
        served, rest = self.on_masters({n: plan[n]["start"] for n in start}, SESSION_TIMEOUT_S)
        for n, (rc, stdout, stderr) in served.items():
            out[n] = {"vb:start": _answer(rc, stdout, stderr)}
            self._launched(n, "vb:start", out[n]["vb:start"].status == "ok", stdout, 0)
        for n, tasks in self.play("launch", rest, {n: plan[n] for n in rest},
                                  live=live).items():
            out.setdefault(n, {}).update(tasks)
        ship = direct + [n for n in start if self.state.hosts[n].status != "running"
                         and (r := out.get(n, {}).get("vb:start")) is not None
                         and r.status == "ok" and "vb-ready=0" in r.stdout]
        shipped, rest = self.ship_direct(ship, bundles)
        if ship:
            self.display.note(f"fleet: bundle sent to {len(shipped)} host(s) through their "
                              f"open SSH connection, {len(rest)} through Ansible")
        for n, tasks in shipped.items():
            out.setdefault(n, {}).update(tasks)
        for n, tasks in self.play("ship", rest, {n: plan[n] for n in rest}, live=live).items():
            out.setdefault(n, {}).update(tasks)
        running = []
        failed_reachable = []
        for n in plan:
            h = self.state.hosts[n]
            results = out.get(n, {})
            if h.status == "running":
                running.append(n)
                continue
            bad = next((r for t, r in results.items() if r.status in ("failed", "unreachable")),
                       None)
            task = next((t for t, r in results.items() if r is bad), "")
            if bad is None:
                self.fail(n, "launch did not complete (no result from Ansible)")
            elif bad.status == "unreachable":
                self.fail(n, f"unreachable during {task[3:]}: {bad.message()}")
            else:
                self.fail(n, f"{task[3:]} failed: {bad.message()}")
                failed_reachable.append(n)
        if failed_reachable and not self.opts.keep:
            self.cleanup(failed_reachable)
        return running

    def _launched(self, host: str, task: str, ok: bool, stdout: str, shipped: int) -> None:
        """A launch or ship answered: the host runs its command (``vb-launched=PID``), and
        ``shipped`` bytes of the bundle reached it."""
        h = self.state.hosts[host]
        pid = scripts.parse_facts(stdout).get("launched")
        if ok and task in ("vb:start", "vb:ship") and pid:
            self.update(host, "running", job_id=pid[0], job_file=None, launched=utc_now(),
                        attempts=h.attempts + 1, lost_polls=0, last_poll=None,
                        bytes_shipped=h.bytes_shipped + shipped)
        elif shipped:
            self.update(host, bytes_shipped=h.bytes_shipped + shipped)

    def ship_direct(self, names: list[str], bundles: dict[str, bundlemod.Bundle]
                    ) -> tuple[Outcomes, list[str]]:
        """Ship the bundle to ``names`` through the SSH masters Ansible left open
        (:meth:`on_masters`, the tar on the client's stdin, the remote shell
        :func:`scripts.ship_stdin`): about 4 ms of controller CPU per host where Ansible's
        ``script`` costs about 78 ms (bench/fleet_costs.py), and no ``ansible-playbook``
        start. Returns ``vb:ship`` results like a playbook's, and the hosts left to
        Ansible's ship playbook."""
        from virtbench.fleet.command import remote_command

        commands: dict[str, str] = {}
        for n in names:
            h = self.state.hosts[n]
            p = self.paths_for(h)
            argv, stdout_name, _doc = remote_command(self.state.command, p.run_dir,
                                                     self.opts.output_option)
            commands[n] = scripts.ship_stdin(p, h.python or "python3", bundles[n].hash, argv,
                                             stdout_name, timeout=int(self.opts.timeout))
        answers, rest = self.on_masters(commands, SESSION_TIMEOUT_S,
                                        stdin={n: bundles[n].path for n in names})
        outcomes: Outcomes = {}
        for n, (rc, stdout, stderr) in answers.items():
            facts = scripts.parse_facts(stdout)
            received = (facts.get("received") or ["0"])[0]
            result = _answer(rc, stdout, stderr)
            self._launched(n, "vb:ship", result.status == "ok", stdout,
                           int(received) if received.isdigit() else 0)
            outcomes[n] = {"vb:ship": result}
        return outcomes, rest

    def on_masters(self, commands: dict[str, str], timeout: float,
                   stdin: dict[str, Path] | None = None
                   ) -> tuple[dict[str, tuple[int, str, str]], list[str]]:
        """Run each host's shell script in a session of its own on the SSH master Ansible
        keeps open for it (a plain ssh client on the socket named by
        :func:`~virtbench.fleet.ansible.control_name`; ``stdin``: a file for it): about 4 ms
        of controller CPU per host, against about 25 ms for an Ansible task and half a
        second per ``ansible-playbook`` start. At most ``--forks`` at once.

        Returns (exit status, stdout, stderr) per host served, and the hosts left to
        Ansible, in order: all of them under ``--become``, when the user's configuration
        owns SSH multiplexing (no master of ours) or without an ``ssh`` client; else each
        host without a master or a user id from this controller's preflight, whose session
        runs as another user than Ansible's tasks (the inventory's ``become``), or that did
        not answer a ``vb-`` line before its session ended with status 255 (its master
        expired, or the host went away: Ansible then connects, or names the reason as for
        any task). Each host's seconds are added to its task time as Ansible's are."""
        import shutil

        cp = control_dir()
        ssh = shutil.which("ssh")
        if not commands or cp is None or ssh is None or self.opts.become:
            return {}, list(commands)
        jobs: dict[str, list[str]] = {}
        for n, script in commands.items():
            sock = cp / control_name(n)
            uid = self._facts_pkg.get(n, ("", ""))[1]
            if uid.isdigit() and sock.is_socket():
                # -F /dev/null: the master holds the connection (address, user, keys,
                # options); the client only talks to its socket. ProxyCommand=false: should
                # the master be gone, the client must not connect on its own
                jobs[n] = [ssh, "-F", "/dev/null", "-T", "-o", "BatchMode=yes",
                           "-o", "ControlMaster=no", "-o", f"ControlPath={sock}",
                           "-o", "ProxyCommand=false", "vb-fleet-master",
                           scripts.as_user(uid, script)]
        answers = self._run_clients(jobs, stdin or {}, timeout)
        served: dict[str, tuple[int, str, str]] = {}
        busy: dict[str, float] = {}
        fastest: dict[str, float] = {}
        for n, (rc, stdout, stderr, secs) in answers.items():
            facts = scripts.parse_facts(stdout)
            if "direct-skipped" in facts or (rc == 255 and not facts):
                continue
            served[n] = (rc, stdout, stderr)
            busy[n] = secs
            if rc == 0:
                fastest[n] = secs
        self._add_busy(busy, fastest)
        return served, [n for n in commands if n not in served]

    def _run_clients(self, jobs: dict[str, list[str]], stdin: dict[str, Path],
                     timeout: float) -> dict[str, tuple[int, str, str, float]]:
        """Run the commands, ``--forks`` at once: (exit status, stdout, stderr, seconds) of
        each that ran. Ctrl-C stops them all (Interrupted)."""
        from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

        procs: dict[str, subprocess.Popen[bytes]] = {}
        answers: dict[str, tuple[int, str, str, float]] = {}
        if not jobs:
            return answers
        with ThreadPoolExecutor(max_workers=max(1, self.state.forks),
                                thread_name_prefix="vb-ssh") as pool:
            pending: dict[Future[tuple[int, str, str, float] | None], str] = {
                pool.submit(self._run_client, cmd, stdin.get(n), n, procs, timeout): n
                for n, cmd in jobs.items()}
            try:
                while pending:
                    done, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                    self.display.tick()
                    for fut in done:
                        n = pending.pop(fut)
                        answer = fut.result()
                        if answer is not None:
                            answers[n] = answer
            except KeyboardInterrupt:
                self._cancel.set()
                with self.lock:
                    for proc in procs.values():
                        if proc.poll() is None:
                            proc.kill()
                raise Interrupted() from None
        return answers

    def _run_client(self, cmd: list[str], stdin: Path | None, n: str,
                    procs: dict[str, subprocess.Popen[bytes]], timeout: float
                    ) -> tuple[int, str, str, float] | None:
        """One ssh client: (exit status, stdout, stderr, seconds); None when the fleet was
        interrupted before it started."""
        if self._cancel.is_set():
            return None
        t0 = time.monotonic()
        with open(stdin or "/dev/null", "rb") as f:
            proc = subprocess.Popen(cmd, stdin=f, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            with self.lock:
                procs[n] = proc
            if self._cancel.is_set():  # interrupted while it started
                proc.kill()
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                err += f"\nno answer within {timeout:g} s".encode()
        return (proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                time.monotonic() - t0)

    def cleanup(self, names: list[str]) -> None:
        plan = {}
        for n in names:
            h = self.state.hosts[n]
            if h.remote_dir:
                plan[n] = {"cleanup": scripts.cleanup(self.paths_for(h), h.job_file)}
        served, rest = self.on_masters({n: plan[n]["cleanup"] for n in plan},
                                       SESSION_TIMEOUT_S)
        out = {n: {"vb:cleanup": _answer(rc, stdout, stderr)}
               for n, (rc, stdout, stderr) in served.items()}
        out.update(self.play("cleanup", rest, {n: plan[n] for n in rest}))
        for n in plan:
            r = out.get(n, {}).get("vb:cleanup")
            if r is not None and r.status == "ok" and "removed" in scripts.parse_facts(r.stdout):
                self.update(n, cleaned=True)

    def cancel(self, names: list[str]) -> None:
        """Stop the hosts' detached commands and remove their remote files (unless
        --keep). A host's reason says what was done: its command stopped or not running any
        more, processes still there after the SIGKILL, a directory that could not be
        removed."""
        plan = {n: {"cancel": scripts.cancel(self.paths_for(self.state.hosts[n]),
                                             self.state.hosts[n].job_file, keep=self.opts.keep)}
                for n in names if self.state.hosts[n].remote_dir}
        out = self.play("cancel", list(plan), plan)
        for n in plan:
            r = out.get(n, {}).get("vb:cancel")
            if r is None or r.status != "ok":
                why = r.message() if r else "no answer"
                self.fail(n, f"cancel could not reach the host ({why}); its command may still "
                          "run there", job_id=None)
                continue
            facts = scripts.parse_facts(r.stdout)
            if "left" in facts:
                self.fail(n, f"cancel could not stop its command: {facts['left'][0]} of its "
                          "processes were still there after SIGKILL; its files were kept")
                continue
            reason = "cancelled"
            if "cancelled" in facts:
                reason += ": its command was stopped"
            elif "ended" in facts:
                reason += f": its command had ended (exit status {facts['ended'][0]})"
            elif "gone" in facts:
                reason += ": its command was gone (died without an exit status)"
            if not self.opts.keep and "removed" not in facts:
                why = (facts.get("not-removed") or [""])[0] or "no answer from rm"
                reason += f"; its directory {self.paths_for(self.state.hosts[n]).host_dir} " \
                          f"could not be removed ({why[:200]})"
            self.fail(n, reason, job_id=None,
                      cleaned=not self.opts.keep and "removed" in facts)

    def wait(self, names: list[str]) -> None:
        """Poll running hosts until each is collected or given up."""
        pending = list(names)
        while pending:
            self._sleep(self.opts.poll_interval)
            self.poll(pending)
            pending = [n for n in pending if self.state.hosts[n].status == "running"]

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.25))
            self.display.tick()

    def poll(self, names: list[str], tolerate_lost: bool = True) -> dict[str, str]:
        """One poll round: one SSH session per host, which also collects a host whose
        command ended (document, stderr tail, clean up). Returns each host's state.

        ``tolerate_lost=False`` (re-attaching): an unreachable host fails at once, and a host
        whose command died keeps its files, since it is started again right away."""
        from virtbench.fleet.command import remote_command

        plan: dict[str, dict[str, Any]] = {}
        for n in names:
            h = self.state.hosts[n]
            p = self.paths_for(h)
            _argv, _stdout, document = remote_command(self.state.command, p.run_dir,
                                                      self.opts.output_option)
            plan[n] = {"poll": scripts.poll(p, h.python or "python3", document)}
        served, rest = self.on_masters({n: plan[n]["poll"] for n in names}, POLL_TIMEOUT_S)
        out = {n: {"vb:poll": _answer(rc, stdout, stderr)}
               for n, (rc, stdout, stderr) in served.items()}
        out.update(self.play("poll", rest, {n: plan[n] for n in rest}))
        states: dict[str, str] = {}
        finished: list[tuple[str, str, dict[str, list[str]]]] = []
        with self.batch():
            for n in names:
                h = self.state.hosts[n]
                res = out.get(n, {}).get("vb:poll")
                if res is None or res.status != "ok":
                    why = res.message() if res else "no answer"
                    lost = h.lost_polls + 1
                    if lost >= self.opts.lost_polls or not tolerate_lost:
                        self.fail(n, f"unreachable while its command ran ({why}); it may still "
                                  "be running there: `virtbench fleet resume "
                                  f"{self.state.id}` checks", lost_polls=lost)
                        states[n] = "lost"
                    else:
                        self.update(n, lost_polls=lost, reason=f"poll failed ({why}); retrying")
                        states[n] = "running"
                    continue
                facts = scripts.parse_facts(res.stdout)
                st = (facts.get("state") or ["?"])[0]
                states[n] = st
                if st == "running":
                    self.update(n, last_poll=utc_now(), lost_polls=0, reason=None)
                elif st in ("done", "dead"):
                    finished.append((n, res.stdout, facts))
                elif st == "missing":
                    self.fail(n, "its run directory vanished from the target (rebooted? "
                              "cleaned?); `fleet resume` starts it again", job_id=None)
                else:
                    self.fail(n, f"unexpected poll answer: {res.stdout.strip()[:200]}")
        # each collected host saved at once, then its remote files removed: only once its
        # document is here. Removed by the poll that answered with it, a Ctrl-C (or a lost
        # connection) between the host's answer and the save here lost the result: `fleet
        # resume` found no run directory and ran the command again. A host whose command
        # died keeps its files when re-attaching: it is started again in them at once.
        for n, stdout, facts in finished:
            self._collected(n, stdout, facts)
        clean = [n for n, _stdout, facts in finished
                 if tolerate_lost or (facts.get("state") or [""])[0] == "done"]
        if clean and not self.opts.keep:
            self.cleanup(clean)
        return states

    def _collected(self, n: str, stdout: str, facts: dict[str, list[str]]) -> str:
        """A finished host's poll answer: save its document, import it."""
        import base64
        import binascii

        rc_text = (facts.get("rc") or [""])[0]
        rc = int(rc_text) if rc_text.lstrip("-").isdigit() else None
        tail = scripts.between(stdout, "vb-stderr-begin", "vb-stderr-end").strip("\n")
        local = self.state.host_dir(n) / "document.json"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.unlink(missing_ok=True)
        encoded = "".join(scripts.between(stdout, "vb-doc-begin", "vb-doc-end").split())
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            data = b""
        if data:
            atomic_write(local, data)
        self.update(n, "fetching", rc=rc, stderr_tail=tail[-2000:] or None,
                    finished=utc_now(), cleaned=False)
        return self._finish(n, local, rc, tail or None)

    def _finish(self, name: str, local: Path, rc: int | None, tail: str | None) -> str:
        from virtbench.fleet.results import import_document

        last = _last_line(tail)
        if not local.exists() or local.stat().st_size == 0:
            if rc is None:
                self.fail(name, "the command died without an exit status (killed? "
                          f"--timeout {self.opts.timeout}s reached?)"
                          + (f": {last}" if last else ""), job_id=None)
                return "dead-gone"
            self.fail(name, f"the command exited {rc} without a document"
                      + (f": {last}" if last else ""), job_id=None)
            return "failed"
        try:
            run_id, kind, summary = import_document(self.state, name, local)
        except UsageError as exc:
            self.fail(name, f"fetched document is not usable: {exc}", job_id=None)
            return "failed"
        h = self.state.hosts[name]
        ids = [*h.run_ids, run_id] if run_id else h.run_ids
        if rc == 0:
            self.update(name, "fetched", reason=None, document=str(local), run_ids=ids, kind=kind,
                        summary=summary)
            return "fetched"
        why = f"exit status {rc}" if rc is not None else "killed"
        self.fail(name, f"the command failed ({why}{': ' + last if last else ''}); its "
                  f"partial document was imported as {run_id}", document=str(local),
                  run_ids=ids, kind=kind, job_id=None, summary=summary)
        return "failed"


def _answer(rc: int, stdout: str, stderr: str) -> TaskResult:
    """A session on a host's master (:meth:`Engine.on_masters`) as the task result Ansible
    would have given: ``ok`` (exit status 0), ``failed``, or ``unreachable`` when the
    connection was lost (status 255) before the script said it had started its command."""
    if rc == 255 and "launched" not in scripts.parse_facts(stdout):
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
        return TaskResult("unreachable", {"msg": lines[-1] if lines else "connection lost"})
    status = "ok" if rc in (0, 255) else "failed"
    return TaskResult(status, {"stdout": stdout, "stderr": stderr, "rc": rc})


SSH_HINTS = (
    ("Host key verification failed",
     " (the host's key is not in known_hosts: connect once with ssh, or add it with "
     "ssh-keyscan; host key checking stays on as in Ansible)"),
    ("Permission denied", " (check ansible_user and the key: ansible_ssh_private_key_file or "
     "your ssh agent)"),
    ("Could not resolve hostname", " (check the name, or set ansible_host)"),
    ("Connection timed out", " (host down, or a firewall in the way)"),
)


def ssh_hint(message: str) -> str:
    """What to do about the usual SSH failures."""
    for needle, hint in SSH_HINTS:
        if needle in message:
            return hint
    return ""


def _last_line(text: str | None) -> str:
    if not text:
        return ""
    lines = [ln.strip() for ln in text.replace("\r", "").splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


def dump_outcomes(out: Outcomes) -> str:
    """Debug helper: the outcomes as JSON."""
    return json.dumps({h: {t: asdict(r) for t, r in tasks.items()} for h, tasks in out.items()},
                      indent=1, default=str)
