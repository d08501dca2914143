"""Run ``virtbench`` sub-commands in-process (fast) and capture what they print."""

from __future__ import annotations

import contextlib
import io

import virtbench.cli as cli


def _available() -> tuple[str, ...]:
    ok = []
    for name in cli.COMMAND_MODULES:
        try:
            cli._load(name)
        except ImportError:  # a command another engineer has not landed yet
            continue
        ok.append(name)
    return tuple(ok)


def vb(*argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``virtbench ARGV...``."""
    out, err = io.StringIO(), io.StringIO()
    saved = cli.COMMAND_MODULES
    cli.COMMAND_MODULES = _available()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(list(argv))
            except SystemExit as exc:
                rc = int(exc.code) if isinstance(exc.code, int) else 2
    finally:
        cli.COMMAND_MODULES = saved
    return rc, out.getvalue(), err.getvalue()
