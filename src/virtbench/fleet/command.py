"""The virtbench command a fleet runs on each target, and where its document goes.

The command is checked on the controller with virtbench's own parser (the targets run the
same version), so a typo fails at once instead of on every host: the CLI describes it
(:class:`CommandInfo`) and :func:`validate` decides. Its JSON document is
written to a file in the run directory on the target:

- commands with ``--output FILE`` (``run``, experiments) get ``--output document.json``: they
  save after each step, so a host killed mid-run still has a partial document to fetch;
- other commands that support ``--json`` (``detect``) get ``--json`` with stdout captured to
  ``document.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from virtbench.errors import UsageError

DOCUMENT = "document.json"
REFUSED = {"fleet": "a fleet cannot run a fleet",
           "import": "import reads local files; run it on the controller",
           "report": "report reads the local store; run it on the controller",
           "compare": "compare reads the local store; run it on the controller"}


@dataclass(frozen=True)
class CommandInfo:
    """What virtbench's own parser (on the controller: the CLI builds this, see
    ``virtbench.cli.fleet.describe_command``) says about a fleet command."""

    options: frozenset[str] | None
    """Option strings of the (sub-)sub-command, e.g. those of ``io seqread``. None: the parser
    cannot be built here; empty: no such command."""
    error: str | None = None
    """The parser's complaint about the whole command line, if any."""
    help_only: bool = False
    """The command line only asks for help."""

    @property
    def takes_output(self) -> bool:
        return self.options is not None and "--output" in self.options


def validate(command: list[str], describe: Callable[[list[str]], CommandInfo]) -> CommandInfo:
    """Refuse a command the targets could not run, with virtbench's own error message;
    ``describe`` asks the CLI's parser about it."""
    if not command:
        raise UsageError("no command: give the virtbench command after --, "
                         "e.g. `virtbench fleet run -i hosts.ini -- detect`")
    name = command[0]
    if name.startswith("-"):
        raise UsageError(f"the fleet command must start with a virtbench command, not {name}")
    if name in REFUSED:
        raise UsageError(f"fleet cannot run `{name}`: {REFUSED[name]}")
    info = describe(list(command))
    opts = info.options
    if opts is None:
        return info
    if not opts:
        raise UsageError(f"unknown virtbench command {name!r}")
    if "--output" not in opts and "--json" not in opts:
        raise UsageError(f"`virtbench {name}` produces no JSON document (no --json or "
                         "--output option): fleet only runs commands whose results it can fetch")
    if any(a in ("--output", "-o") or a.startswith("--output=") for a in command[1:]):
        raise UsageError("do not give --output to a fleet command: the fleet fetches the "
                         "document itself")
    if info.error is not None:
        raise UsageError(f"the fleet command `virtbench {' '.join(command)}` is invalid: "
                         f"{info.error}")
    if info.help_only:
        raise UsageError(f"`virtbench {' '.join(command)}` only prints help")
    return info


def remote_command(command: list[str], run_dir: str, takes_output: bool
                   ) -> tuple[list[str], str, str]:
    """(argv after ``virtbench``, file that captures stdout, document file name).
    ``takes_output``: the command has ``--output`` (:attr:`CommandInfo.takes_output`)."""
    argv = list(command)
    if takes_output:
        return [*argv, "--output", f"{run_dir}/{DOCUMENT}"], "stdout.log", DOCUMENT
    if "--json" not in argv:
        argv.append("--json")
    return argv, DOCUMENT, DOCUMENT
