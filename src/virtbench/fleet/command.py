"""The virtbench command a fleet runs on each target, and where its document goes.

The command is checked here, on the controller, with virtbench's own parser (the targets run
the same version), so a typo fails at once instead of on every host. Its JSON document is
written to a file in the run directory on the target:

- commands with ``--output FILE`` (``run``, experiments) get ``--output document.json``: they
  save after each step, so a host killed mid-run still has a partial document to fetch;
- other commands that support ``--json`` (``detect``) get ``--json`` with stdout captured to
  ``document.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
from functools import cache

from virtbench.errors import UsageError

DOCUMENT = "document.json"
REFUSED = {"fleet": "a fleet cannot run a fleet",
           "import": "import reads local files; run it on the controller",
           "report": "report reads the local store; run it on the controller",
           "compare": "compare reads the local store; run it on the controller"}


@cache
def _options(command: tuple[str, ...]) -> frozenset[str] | None:
    """Option strings of the (sub-)sub-command ``command`` names, e.g. ``("io", "seqread",
    "--size", "1G")`` -> the options of ``io seqread``. None: the parser cannot be built
    here; empty: no such command."""
    try:
        from virtbench.cli import _only_module, build_parser

        parser: argparse.ArgumentParser = build_parser(_only_module([command[0]]))
    except Exception:
        return None
    found = False
    for word in command:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)),
                   None)
        if sub is None or word not in sub.choices:
            break
        parser = sub.choices[word]
        found = True
    if not found:
        return frozenset()
    return frozenset(parser._option_string_actions)


def validate(command: list[str]) -> None:
    """Refuse a command the targets could not run, with virtbench's own error message."""
    if not command:
        raise UsageError("no command: give the virtbench command after --, "
                         "e.g. `virtbench fleet run -i hosts.ini -- detect`")
    name = command[0]
    if name.startswith("-"):
        raise UsageError(f"the fleet command must start with a virtbench command, not {name}")
    if name in REFUSED:
        raise UsageError(f"fleet cannot run `{name}`: {REFUSED[name]}")
    opts = _options(tuple(command))
    if opts is None:
        return
    if not opts:
        raise UsageError(f"unknown virtbench command {name!r}")
    if "--output" not in opts and "--json" not in opts:
        raise UsageError(f"`virtbench {name}` produces no JSON document (no --json or "
                         "--output option): fleet only runs commands whose results it can fetch")
    if any(a in ("--output", "-o") or a.startswith("--output=") for a in command[1:]):
        raise UsageError("do not give --output to a fleet command: the fleet fetches the "
                         "document itself")
    from virtbench.cli import _only_module, build_parser

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            build_parser(_only_module([name])).parse_args(list(command))
    except SystemExit as exc:
        if exc.code not in (0, None):
            msg = err.getvalue().strip().splitlines()
            text = msg[-1] if msg else "invalid arguments"
            raise UsageError(f"the fleet command `virtbench {' '.join(command)}` is invalid: "
                             f"{text.split('error: ', 1)[-1]}") from None
        raise UsageError(f"`virtbench {' '.join(command)}` only prints help") from None


def remote_command(command: list[str], run_dir: str) -> tuple[list[str], str, str]:
    """(argv after ``virtbench``, file that captures stdout, document file name)."""
    argv = list(command)
    opts = _options(tuple(command)) if command else None
    if opts is not None and "--output" in opts:
        return [*argv, "--output", f"{run_dir}/{DOCUMENT}"], "stdout.log", DOCUMENT
    if "--json" not in argv:
        argv.append("--json")
    return argv, DOCUMENT, DOCUMENT
