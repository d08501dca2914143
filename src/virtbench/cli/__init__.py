"""Command-line entry point.

Each sub-command lives in its own module under ``virtbench.cli`` and exposes::

    NAME: str                      # the sub-command word
    HELP: str                      # one line for ``virtbench --help``
    def register(parser: argparse.ArgumentParser) -> None   # add its options
    def run(args: argparse.Namespace) -> int                # do it, return exit code

To add a command, write the module and add its name to ``COMMAND_MODULES`` (the one place).
``main()`` stays tiny: parse, dispatch, turn ``VirtbenchError`` into one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from types import ModuleType

from virtbench import __version__
from virtbench.errors import VirtbenchError

# The one registry of sub-commands, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "build",
    "import_",
    "runs",
    "show",
    "compare",
    "explain",
    "report",
    "export",
    "rm",
    "db",
    "detect",
    "snapshot",
    "io",
    "tune",
    "consolidate",
    "cap",
    "migrate-check",
    "migrate",
    "fleet",
)


def _load(name: str) -> ModuleType:
    from virtbench.experiments import registry

    if name.replace("_", "-") in registry.command_words():  # the experiments' commands
        from virtbench.cli._experiment import command_for

        found: ModuleType = command_for(name)  # type: ignore[assignment]
        return found
    return importlib.import_module(f"virtbench.cli.{name.replace('-', '_')}")


def _command_names() -> tuple[str, ...]:
    """``COMMAND_MODULES``, then the experiments' commands it does not list."""
    from virtbench.experiments import registry

    return COMMAND_MODULES + tuple(w for w in registry.command_words()
                                   if w not in COMMAND_MODULES)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's default prints usage + message with exit 2; keep it to one clear line.
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _only_module(argv: Sequence[str] | None) -> str | None:
    """The module of the sub-command named first on the command line, if it is a known one.

    Importing every command module costs seconds (numpy/scipy/pydantic); a command such as
    ``detect`` must answer in well under a second, so only its own module is loaded.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        return None
    word = args[0].replace("-", "_")
    for name in _command_names():
        if name.replace("-", "_") in (word, word + "_"):
            return name
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="virtbench",
        description="Measure and explain what virtualization costs a Linux server.",
    )
    parser.add_argument("--version", action="version", version=f"virtbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _command_names() if only is None else (only,):
        mod = _load(name)
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.register(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_only_module(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    # SIGTERM behaves like Ctrl-C so every cleanup path (finally blocks) runs.
    signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        rc: int = args._run(args)
        return rc
    except VirtbenchError as exc:
        sys.stderr.write(f"virtbench: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("virtbench: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141


def _sigterm_to_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
