"""``virtbench fleet``: the same measurement on many hosts, through Ansible.

Sub-commands: ``run``, ``status``, ``resume``, ``results``, ``cancel`` (see docs/fleet.md).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from virtbench.cli._common import info
from virtbench.errors import EnvironmentUnsupported, UsageError
from virtbench.fleet.command import CommandInfo
from virtbench.table import Col, print_table

NAME = "fleet"
HELP = "run a virtbench command on many hosts through Ansible and bring the results home"
EXAMPLES = (
    "virtbench fleet run -i hosts.ini -- run --quick -c 1 dhry2reg",
    "virtbench fleet run -i hosts.ini -l web -f 20 -- detect --json",
    "virtbench fleet status latest",
    "virtbench fleet resume latest",
    "virtbench fleet cancel latest --keep",
    "virtbench fleet results latest --json",
)

EXIT_SOME_FAILED = 1


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text!r}")
    return v


def _common_run_options(p: argparse.ArgumentParser, *, resume: bool) -> None:
    default = argparse.SUPPRESS if resume else None
    p.add_argument("-f", "--forks", type=_positive_int, default=default if resume else 10,
                   help="parallel Ansible connections (default 10); all launched hosts "
                        "measure at the same time whatever this is")
    p.add_argument("--poll-interval", type=_positive_float, metavar="SECONDS",
                   default=default if resume else 30.0,
                   help="seconds between two polls of a running host (default 30): each poll "
                        "is one short SSH session running a shell `test`/`cat` on the target")
    p.add_argument("--json", action="store_true",
                   help="print the fleet state as JSON on stdout at the end")


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND",
                                parser_class=type(parser))

    p = sub.add_parser("run", help="run a virtbench command on every host of an inventory",
                       description="Run `virtbench COMMAND` on every host of an Ansible "
                       "inventory (detached, polled), fetch each document into the store.")
    p.add_argument("-i", "--inventory", required=True, metavar="INVENTORY",
                   help="Ansible inventory: INI or YAML file, directory, or inventory plugin "
                        "source")
    p.add_argument("-l", "--limit", metavar="PATTERN",
                   help="Ansible host pattern selecting hosts of the inventory")
    p.add_argument("--install-deps", action="store_true",
                   help="install Python 3 and a C compiler with the host's package manager "
                        "when missing (needs root or sudo)")
    p.add_argument("--keep", action="store_true",
                   help="keep the remote run directory and cache (the bundle is kept in any "
                        "case: the next fleet run ships it only to hosts without it)")
    p.add_argument("--become", action="store_true",
                   help="run everything on the targets through Ansible become (sudo)")
    p.add_argument("--deps", choices=("index", "ship"), default="ship",
                   help="kept for compatibility: the lean target bundle always carries its "
                        "few dependencies (pydantic), downloaded by the controller for each "
                        "target platform; targets need no package index")
    p.add_argument("--timeout", type=_positive_int, default=86400, metavar="SECONDS",
                   help="kill a remote command that runs longer than this (default 86400)")
    p.add_argument("--remote-dir", metavar="DIR",
                   help="where virtbench lives on targets (default "
                        "$HOME/.cache/virtbench-fleet); a run's files are removed afterwards "
                        "unless --keep, the bundle stays")
    _common_run_options(p, resume=False)
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="the virtbench command to run on each host, after --")
    p.set_defaults(_fleet=_run)

    p = sub.add_parser("status", help="list fleet runs, or the state of one")
    p.add_argument("run_id", nargs="?", metavar="RUN", help="fleet run id (or prefix)")
    p.add_argument("--json", action="store_true", help="print the state as JSON")
    p.set_defaults(_fleet=_status)

    p = sub.add_parser("resume", help="finish a fleet run: collect hosts still running, "
                                      "redo the unfinished ones")
    p.add_argument("run_id", metavar="RUN", help="fleet run id (or prefix)")
    p.add_argument("-i", "--inventory", metavar="INVENTORY",
                   help="use this inventory instead of the one the run was started with")
    _common_run_options(p, resume=True)
    p.set_defaults(_fleet=_resume)

    p = sub.add_parser("cancel", help="abandon a fleet run: stop the commands still running "
                                      "on the targets and remove virtbench's files there")
    p.add_argument("run_id", metavar="RUN", help="fleet run id (or prefix, or latest)")
    p.add_argument("--keep", action="store_true",
                   help="stop the commands but keep the remote files")
    p.add_argument("-f", "--forks", type=_positive_int, default=None,
                   help="parallel Ansible connections (default: the run's)")
    p.set_defaults(_fleet=_cancel)

    p = sub.add_parser("results", help="index per host, grouped, with outliers explained")
    p.add_argument("run_id", metavar="RUN", help="fleet run id (or prefix)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.add_argument("--copies", type=_positive_int, metavar="N",
                   help="which section of multi-copy runs to compare (default: 1 copy)")
    p.add_argument("--db", metavar="URL", default=None,
                   help="results database URL (default: $VIRTBENCH_DB or SQLite in the data "
                        "dir)")
    p.set_defaults(_fleet=_results)


def run(args: argparse.Namespace) -> int:
    handler = getattr(args, "_fleet", None)
    if handler is None:
        raise UsageError("fleet needs a sub-command: run, status, resume or results "
                         "(virtbench fleet --help)")
    _need_fleet_extra()
    from virtbench.fleet.ansible import close_masters

    try:
        rc: int = handler(args)
    finally:  # Ansible's SSH masters (ControlPersist) must not outlive the command
        close_masters()
    return rc


def _need_fleet_extra() -> None:
    """One line naming the extra when Ansible or rich is not installed."""
    import importlib

    for module in ("ansible_runner", "ansible", "rich"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise EnvironmentUnsupported(
                f"virtbench fleet needs the [fleet] extra ({module} is missing): "
                "pip install 'virtbench[fleet]'") from None


# ---- the command the hosts run ----------------------------------------------------------------
def _sub_parser(command: Sequence[str]) -> argparse.ArgumentParser | None:
    """The parser of the (sub-)sub-command ``command`` names, e.g. ``io seqread`` for
    ``("io", "seqread", "--size", "1G")``; None: no such command."""
    from virtbench.cli import _only_module, build_parser

    parser: argparse.ArgumentParser = build_parser(_only_module([command[0]]))
    found = False
    for word in command:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
                   None)
        if sub is None or word not in sub.choices:
            break
        parser = sub.choices[word]
        found = True
    return parser if found else None


@functools.cache
def _describe(command: tuple[str, ...]) -> CommandInfo:
    from virtbench.cli import _only_module, build_parser

    try:
        parser = _sub_parser(command)
    except Exception:
        return CommandInfo(options=None)
    if parser is None:
        return CommandInfo(options=frozenset())
    options = frozenset(parser._option_string_actions)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser(_only_module([command[0]])).parse_args(list(command))
    except SystemExit as exc:
        if exc.code not in (0, None):
            msg = err.getvalue().strip().splitlines()
            text = msg[-1] if msg else "invalid arguments"
            return CommandInfo(options, error=text.split("error: ", 1)[-1])
        return CommandInfo(options, help_only=True)
    return CommandInfo(options)


def describe_command(command: list[str]) -> CommandInfo:
    """What virtbench's own parser says about the fleet command ``command``."""
    return _describe(tuple(command))


def check_command(command: list[str]) -> CommandInfo:
    """The fleet command checked (``UsageError`` if the hosts could not run it)."""
    from virtbench.fleet.command import validate

    return validate(command, describe_command)


# ---- run / resume ------------------------------------------------------------------------------
def _run(args: argparse.Namespace) -> int:
    from virtbench.fleet.ansible import list_hosts
    from virtbench.fleet.engine import Options
    from virtbench.fleet.state import FleetState, HostState, new_run_id

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    info = check_command(command)
    inventory = _inventory_source(args.inventory)
    hosts = list_hosts(inventory, args.limit)
    if not hosts:
        where = f" matching {args.limit!r}" if args.limit else ""
        raise UsageError(f"no hosts{where} in inventory {args.inventory}")
    opts = Options(install_deps=args.install_deps, keep=args.keep, become=args.become,
                   deps=args.deps, poll_interval=args.poll_interval, timeout=args.timeout,
                   remote_dir=args.remote_dir, output_option=info.takes_output)
    state = FleetState(id=new_run_id(), command=command, inventory=inventory,
                       limit=args.limit, forks=args.forks, options=opts.to_dict(),
                       hosts={h.name: HostState(name=h.name, groups=list(h.groups))
                              for h in hosts})
    state.save()
    return _execute(state, list(state.hosts), args.json)


def _resume(args: argparse.Namespace) -> int:
    from virtbench.fleet.state import FleetState

    state = FleetState.load(args.run_id)
    if getattr(args, "forks", None):
        state.forks = args.forks
    if getattr(args, "poll_interval", None):
        state.options["poll_interval"] = args.poll_interval
    if args.inventory:
        state.inventory = _inventory_source(args.inventory)
    todo = [h.name for h in state.unfinished()]
    if not todo:
        info(f"fleet {state.id}: every host is fetched; nothing to resume")
        if args.json:
            sys.stdout.write(json.dumps(state.to_dict(), indent=2) + "\n")
        return 0
    return _execute(state, todo, args.json)


def _inventory_source(inv: str) -> str:
    """Absolute path for files (ansible-runner runs from its own directory); other sources
    (``host1,host2,``) as given."""
    if os.path.exists(inv):
        return os.path.abspath(inv)
    if "," in inv:
        return inv
    raise UsageError(f"inventory {inv}: no such file or directory")


def _execute(state: Any, names: list[str], as_json: bool) -> int:
    from virtbench import console
    from virtbench.fleet.display import make_display
    from virtbench.fleet.engine import Engine, Interrupted
    from virtbench.fleet.state import run_lock

    display = make_display(state, quiet=console.level < console.NORMAL)
    interrupted = False
    with run_lock(state):
        state.controller = {"pid": os.getpid(), "host": socket.gethostname()}
        state.status = "running"
        state.attempts += 1
        state.save()
        display.start()
        try:
            Engine(state, display).run(names)
        except (Interrupted, KeyboardInterrupt):
            interrupted = True
            _mark_interrupted(state)
        finally:
            fetched = all(h.status == "fetched" for h in state.hosts.values())
            state.status = "interrupted" if interrupted else ("done" if fetched else "incomplete")
            state.save()
            display.stop()
    _print_outcome(state, interrupted)
    if as_json:
        sys.stdout.write(json.dumps(state.to_dict(), indent=2) + "\n")
    if interrupted:
        return 130
    return 0 if state.status == "done" else EXIT_SOME_FAILED


def _mark_interrupted(state: Any) -> None:
    for h in state.hosts.values():
        if h.status == "running":
            h.reason = "controller interrupted; the command goes on running on the target"
        elif h.status == "fetching":
            h.status = "failed"
            h.reason = "interrupted while fetching; `fleet resume` collects it"
        elif h.status in ("queued", "checking", "installing"):
            h.status = "failed"
            h.reason = f"interrupted (Ctrl-C) while {h.status}"
    state.save()


def _print_outcome(state: Any, interrupted: bool) -> None:
    """What happened, on stderr; with ``-q`` only when a host failed or is unfinished."""
    from virtbench import console

    w = sys.stderr.write
    failed = [h for h in state.hosts.values() if h.status == "failed"]
    running = [h for h in state.hosts.values() if h.status == "running"]
    fetched = [h for h in state.hosts.values() if h.status == "fetched"]
    if console.level < console.NORMAL and not (interrupted or failed or running):
        return
    w(f"fleet {state.id}: {len(fetched)} of {len(state.hosts)} hosts fetched into the store"
      f" (label fleet={state.id})\n")
    if failed:
        w(f"{len(failed)} failed:\n")
        for h in failed:
            w(f"  {h.name}: {h.reason}\n")
    slow = [h for h in state.hosts.values() if getattr(h, "slow", None)]
    if slow:
        w(f"{len(slow)} slow:\n")
        for h in slow:
            w(f"  {h.name}: {h.slow}" + ("" if h.status == "fetched" else f" ({h.status})")
              + "\n")
    if running:
        w(f"{len(running)} still running on their targets: "
          + ", ".join(h.name for h in running) + "\n")
    if interrupted or failed or running:
        w(f"next: `virtbench fleet resume {state.id}` collects/redoes the unfinished hosts\n")
    if fetched:
        w(f"      `virtbench fleet results {state.id}` compares the hosts\n")


def _cancel(args: argparse.Namespace) -> int:
    from virtbench.fleet.display import Display, QuietDisplay
    from virtbench.fleet.engine import Engine
    from virtbench.fleet.state import FleetState, run_lock

    state = FleetState.load(args.run_id)
    if args.forks:
        state.forks = args.forks
    state.options["keep"] = bool(args.keep)
    todo = [h.name for h in state.hosts.values()
            if h.status != "fetched" and h.remote_dir and not h.cleaned]
    if not args.keep:  # fetched hosts run with --keep: their files go too
        todo += [h.name for h in state.hosts.values()
                 if h.status == "fetched" and h.remote_dir and not h.cleaned]
    with run_lock(state):
        state.controller = {"pid": os.getpid(), "host": socket.gethostname()}
        state.save()
        if todo:
            from virtbench import console

            quiet = console.level < console.NORMAL
            engine = Engine(state, QuietDisplay(state) if quiet else Display(state))
            fetched = {n for n in todo if state.hosts[n].status == "fetched"}
            engine.cancel([n for n in todo if n not in fetched])
            if fetched:
                engine.cleanup(sorted(fetched))
        for h in state.hosts.values():
            if h.status != "fetched" and h.reason != "cancelled" and \
                    not (h.reason or "").startswith("cancel"):
                h.status, h.reason = "failed", f"cancelled ({h.reason or h.status})"
        state.status = "cancelled"
        state.save()
    info(f"fleet {state.id}: cancelled; "
         f"{sum(1 for h in state.hosts.values() if h.status == 'fetched')} "
         "fetched results stay in the store")
    return 0


# ---- status ------------------------------------------------------------------------------------
def _status(args: argparse.Namespace) -> int:
    from virtbench.fleet.display import host_detail
    from virtbench.fleet.state import FleetState, list_runs

    out = sys.stdout
    if args.run_id is None:
        runs = list_runs()
        if args.json:
            out.write(json.dumps([_run_summary(s) for s in runs], indent=2) + "\n")
            return 0
        if not runs:
            out.write("no fleet runs yet (virtbench fleet run -i INVENTORY -- COMMAND)\n")
            return 0
        rows = [[s.id, _run_status(s), str(len(s.hosts)), str(s.counts()["fetched"]),
                 str(s.counts()["failed"]), " ".join(s.command)] for s in runs]
        print_table([Col("RUN"), Col("STATUS"), Col("HOSTS", right=True),
                     Col("FETCHED", right=True), Col("FAILED", right=True),
                     Col("COMMAND", wrap=True, min_width=16)], rows, rule=False)
        return 0
    state = FleetState.load(args.run_id)
    if args.json:
        d = state.to_dict()
        d["controller_alive"] = state.controller_alive()
        out.write(json.dumps(d, indent=2) + "\n")
        return 0
    out.write(f"fleet run {state.id}: {_run_status(state)}\n")
    out.write(f"  command   virtbench {' '.join(state.command)}\n")
    out.write(f"  inventory {state.inventory}" + (f"  (limit {state.limit})"
                                                  if state.limit else "") + "\n")
    out.write(f"  started   {state.created}, last change {state.updated}, "
              f"{state.attempts} controller run(s)\n\n")
    out.flush()
    print_table([Col("HOST"), Col("GROUPS", wrap=True, min_width=8, breakable=False),
                 Col("STATE"), Col("DETAIL", wrap=True, min_width=16)],
                [[h.name, ",".join(h.groups), h.status, host_detail(h)]
                 for h in state.hosts.values()], rule=False)
    unfinished = state.unfinished()
    if unfinished and not state.controller_alive():
        out.write(f"\n{len(unfinished)} host(s) unfinished: `virtbench fleet resume "
                  f"{state.id}`\n")
    return 0


def _run_status(state: Any) -> str:
    if state.status == "running" and not state.controller_alive():
        return "stopped"  # the controller crashed or was killed
    return str(state.status)


def _run_summary(state: Any) -> dict[str, Any]:
    return {"id": state.id, "status": _run_status(state), "created": state.created,
            "command": state.command, "inventory": state.inventory, "counts": state.counts()}


# ---- results -----------------------------------------------------------------------------------
def _results(args: argparse.Namespace) -> int:
    from virtbench.fleet.state import FleetState
    from virtbench.fleet.views import fleet_table
    from virtbench.report.fleet import render_table

    state = FleetState.load(args.run_id)
    table = fleet_table(state, copies=args.copies, db_url=args.db)
    if args.json:
        sys.stdout.write(json.dumps(table.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_table(table))
    return 0
