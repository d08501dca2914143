"""Command-line entry point.

Each sub-command lives in its own module under ``virtbench.cli`` and exposes::

    NAME: str                      # the sub-command word
    HELP: str                      # one line for ``virtbench --help``
    def register(parser: argparse.ArgumentParser) -> None   # add its options
    def run(args: argparse.Namespace) -> int                # do it, return exit code
    EXAMPLES: tuple[str, ...]      # optional: example command lines for its --help

Every command also gets the common options ``-q``, ``-v`` and ``--debug`` (docs/index.md).

To add a command, write the module and add its name to ``COMMAND_MODULES`` (the one place).
The experiments' commands (``io``, ``tune``, ``consolidate``, ``cap``, ``migrate``...) come
from the experiment registry instead (:mod:`virtbench.cli._experiment`).
``main()`` stays tiny: parse, dispatch, turn ``VirtbenchError`` into one line on stderr.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
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
    "serve",
    "completion",
)

# Every environment variable virtbench reads (tests/test_cli_conventions.py greps the code
# for VIRTBENCH_ names and checks each is here).
ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("VIRTBENCH_DB", "index database URL (default: SQLite in the data dir)"),
    ("VIRTBENCH_KERNEL", "guest kernel for VM experiments (default: the newest in /boot)"),
    ("VIRTBENCH_ACCEL", "QEMU accelerator: kvm or tcg (default: kvm if a guest boots)"),
    ("VIRTBENCH_BUSYBOX", "static busybox for the guest's initramfs (default: found on PATH)"),
    ("VIRTBENCH_QEMU", "QEMU binary (default: qemu-system-x86_64 on PATH)"),
    ("VIRTBENCH_TOKEN", "virtbench serve: the token every request must carry"),
    ("XDG_DATA_HOME", "data dir: results and the SQLite index (default: ~/.local/share)"),
    ("XDG_CACHE_HOME", "build cache of the compiled C programs (default: ~/.cache)"),
    ("CC", "C compiler for every C program virtbench builds, may hold arguments "
           "(default: cc; e.g. CC=\"ccache gcc\")"),
    ("COLUMNS", "table width (default: the terminal's; unlimited in a pipe)"),
    ("NO_COLOR", "no colours on a terminal (nor with TERM=dumb)"),
)
INTERNAL_ENVIRONMENT = ("VIRTBENCH_INSTANCE", "VIRTBENCH_TEST_CACHE",
                        "VIRTBENCH_FLEET_TARGET")
"""Set by virtbench itself (a marker on instance processes, the command a fleet runs on a
target) or by its tests, not by users."""

_STORE = ("VIRTBENCH_DB", "XDG_DATA_HOME")
_TABLES = ("COLUMNS", "NO_COLOR")
_BUILD = ("CC", "XDG_CACHE_HOME")
_VM = ("VIRTBENCH_KERNEL", "VIRTBENCH_ACCEL", "VIRTBENCH_BUSYBOX", "VIRTBENCH_QEMU")
COMMAND_ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "run": (*_STORE, *_BUILD, *_TABLES),
    "build": _BUILD,
    "import": _STORE,
    "runs": (*_STORE, *_TABLES),
    "show": (*_STORE, *_TABLES),
    "compare": (*_STORE, *_TABLES),
    "explain": _STORE,
    "report": _STORE,
    "export": _STORE,
    "rm": _STORE,
    "db": _STORE,
    "detect": (),
    "snapshot": (),
    "io": (*_STORE, *_BUILD, *_TABLES),
    "tune": (*_STORE, *_BUILD, *_VM, *_TABLES),
    "consolidate": (*_STORE, *_BUILD, *_VM, *_TABLES),
    "cap": (*_STORE, *_BUILD, *_VM, *_TABLES),
    "migrate-check": _TABLES,
    "migrate": (*_STORE, *_BUILD, *_VM, *_TABLES),
    "fleet": (*_STORE, *_TABLES),
    "serve": ("VIRTBENCH_TOKEN", *_STORE),
    "completion": (),
}
"""The variables each command reads, listed in its ``--help`` (all of them: ``ENVIRONMENT``,
in ``virtbench --help``). A command missing here lists them all."""

EXAMPLES: tuple[str, ...] = (
    "virtbench run                      # the 12 index tests, 1 copy then one per CPU",
    "virtbench run --list               # tests, groups, units, baselines",
    "virtbench runs                     # the stored runs",
    "virtbench compare env=old env=new  # what changed, beyond noise (labels or run ids)",
    "virtbench compare env=old env=new --fail-above 5%  # CI gate: exit 1 if worse",
    "virtbench report env=old env=new -o report.html  # an offline HTML page",
    "virtbench detect                   # what virtualization is this?",
)


def _load(name: str) -> ModuleType:
    from virtbench.experiments import registry

    if name.replace("_", "-") in registry.command_words():  # the experiments' commands
        from virtbench.cli._experiment import command_for

        found: ModuleType = command_for(name)  # type: ignore[assignment]
        return found
    return importlib.import_module(f"virtbench.cli.{name.replace('-', '_')}")


def _command_names() -> tuple[str, ...]:
    """``COMMAND_MODULES``, then the experiments' commands it does not list
    (:mod:`virtbench.experiments.registry`: adding an experiment is one line there)."""
    from virtbench.experiments import registry

    return COMMAND_MODULES + tuple(w for w in registry.command_words()
                                   if w not in COMMAND_MODULES)


def _summary(name: str) -> tuple[str, str]:
    """(NAME, HELP) of a command module, read from its source without importing it: the
    top-level ``virtbench --help`` lists every command, and importing them all costs more
    than the 0.25 s start-up budget (bench/cli_startup.py). Falls back to importing when the
    values are not plain string literals."""
    from virtbench.experiments import registry

    if name.replace("_", "-") in registry.command_words():
        return name.replace("_", "-"), registry.help_of(name.replace("_", "-"))
    mod_name = f"virtbench.cli.{name.replace('-', '_')}"
    path = Path(__file__).with_name(name.replace("-", "_") + ".py")
    found: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        text = ""
    # The common case, two one-line literals, without parsing the whole module.
    for key in ("NAME", "HELP"):
        m = re.search(rf'^{key} = "([^"\\]*)"$', text, re.M)
        if m:
            found[key] = m.group(1)
    if len(found) == 2:
        return found["NAME"], found["HELP"]
    try:
        tree = ast.parse(text) if text else None
    except (SyntaxError, ValueError):
        tree = None
    for node in tree.body if tree is not None else []:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in ("NAME", "HELP")
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            found[node.targets[0].id] = node.value.value
    if len(found) == 2:
        return found["NAME"], found["HELP"]
    mod = importlib.import_module(mod_name)
    return mod.NAME, mod.HELP


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's default prints usage + message with exit 2; keep it to one clear line.
        from virtbench.safeio import clip_message

        sys.stderr.write(f"{self.prog}: error: {clip_message(message)}\n")
        raise SystemExit(2)


_COMMON_FLAGS = ("--quiet", "--verbose", "--debug")


def _only_module(argv: Sequence[str] | None) -> str | None:
    """The module of the sub-command named first on the command line, if it is a known one.

    Importing every command module costs seconds (pydantic, SQLAlchemy); a command such as
    ``detect`` must answer in well under a second, so only its own module is loaded.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    while args and (args[0] in _COMMON_FLAGS or re.fullmatch(r"-v+|-q", args[0])):
        args.pop(0)
    if not args or args[0].startswith("-"):
        return None
    word = args[0].replace("-", "_")
    for name in _command_names():
        if name.replace("-", "_") in (word, word + "_"):
            return name
    return None


def add_common_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """``-q``/``-v``/``--debug``, accepted before the command word and after it."""
    keep = argparse.SUPPRESS  # a sub-command's default must not overwrite the top-level value
    g = parser.add_argument_group("output options (every command)")
    g.add_argument("-q", "--quiet", action="store_true", default=False if top else keep,
                   help="no progress or info lines on stderr (warnings and errors stay)")
    g.add_argument("-v", "--verbose", action="count", default=0 if top else keep,
                   help="more detail on stderr")
    g.add_argument("--debug", action="store_true", default=False if top else keep,
                   help="an unexpected error prints its traceback")


def _epilog(examples: Sequence[str], env: Sequence[str] | None) -> str:
    """Examples, the environment variables ``env`` names (``None``: every one; a command's
    help then points to ``virtbench --help`` for the rest), the docs and exit codes."""
    parts = []
    if examples:
        parts.append("examples:\n" + "".join(f"  {e}\n" for e in examples))
    chosen = ENVIRONMENT if env is None else [(k, v) for k, v in ENVIRONMENT if k in env]
    if chosen:
        import textwrap

        w = max(len(k) for k, _ in chosen)
        text = "".join(textwrap.fill(v, 79, initial_indent=f"  {k:<{w}}  ",
                                     subsequent_indent=" " * (w + 4)) + "\n"
                       for k, v in chosen)
    else:
        text = "  none read by this command\n"
    if env is not None:
        text += "  (every variable: virtbench --help)\n"
    parts.append("environment:\n" + text)
    parts.append("docs: docs/index.md (one page per command)\n"
                 "exit codes: 0 ok, 1 failed or gate failed, 2 bad usage, 70 internal error,\n"
                 "  130 interrupted\n")
    return "\n".join(parts)


class _HelpFormatter(argparse.HelpFormatter):
    """Text with line breaks (examples, tables) is printed as written; one-line text is
    wrapped to the terminal, as argparse does."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip("\n"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def _finish(parser: argparse.ArgumentParser, words: str, examples: Sequence[str],
            env: Sequence[str] | None) -> None:
    """The sub-commands of a command (``fleet status``, ``io postmark``) get the common
    options, examples and environment too: each its own examples (those starting with
    ``virtbench WORDS SUB``), else the command's."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {a.dest: a.help for a in action._choices_actions}
        done: set[int] = set()
        for sub_word, child in action.choices.items():
            if id(child) in done:
                continue
            done.add(id(child))
            if child.description is None:
                child.description = helps.get(sub_word)
            full = f"{words} {sub_word}"
            own = [e for e in examples if (e + " ").startswith(f"virtbench {full} ")]
            child.formatter_class = _HelpFormatter
            child.epilog = _epilog(own or examples, env)
            add_common_options(child)
            _finish(child, full, own or examples, env)


def build_parser(only: str | None = None, summary: bool = False) -> argparse.ArgumentParser:
    """The parser of every command (``only``: of that one). ``summary``: commands listed with
    their one-line help but no options, for the top-level ``--help`` (no module imported)."""
    parser = _Parser(
        prog="virtbench",
        description="Measure and explain what virtualization costs a Linux server.",
        epilog=_epilog(EXAMPLES, env=None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"virtbench {__version__}")
    add_common_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in _command_names() if only is None else (only,):
        if summary:
            word, help_text = _summary(name)
            sub.add_parser(word, help=help_text)
            continue
        mod = _load(name)
        examples = tuple(getattr(mod, "EXAMPLES", ()))
        env = COMMAND_ENVIRONMENT.get(mod.NAME)
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP,
                           epilog=_epilog(examples, env), formatter_class=_HelpFormatter)
        mod.register(p)
        add_common_options(p)
        _finish(p, mod.NAME, examples, env)
        p.set_defaults(_run=mod.run)
    return parser


OVERVIEW = """virtbench {version}: measure and explain what virtualization costs a Linux server.

  virtbench run              run the UnixBench-compatible suite (--list: the tests)
  virtbench runs             list the stored runs
  virtbench compare A B      what changed between runs, beyond noise
  virtbench report RUN...    an offline HTML report of runs
  virtbench detect           what virtualization is this machine under?

`virtbench --help` lists every command; `virtbench COMMAND --help` its options and examples.
"""


def main(argv: Sequence[str] | None = None) -> int:
    try:  # Ctrl-C while the command modules are imported is one line too, not a traceback
        if signal.getsignal(signal.SIGINT) is signal.SIG_DFL:  # set by virtbench._entry
            signal.signal(signal.SIGINT, signal.default_int_handler)
        from virtbench.cli._interrupt import Redeliver

        with Redeliver():  # nor lost in a finalizer or callback (cli/_interrupt.py)
            return _main(argv)
    except KeyboardInterrupt:
        sys.stderr.write("virtbench: interrupted\n")
        return 130


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list:
        # Bare `virtbench`: a short overview, not an error.
        sys.stdout.write(OVERVIEW.format(version=__version__))
        return 0
    from virtbench import console

    console.configure()  # each call starts afresh (tests call main() many times)
    console.configured = False
    # Until the options are parsed (a ``--debug`` after ``fleet run ... --`` is the remote
    # command's), ``--debug`` anywhere counts.
    debug = "--debug" in args_list
    try:
        return _dispatch(args_list)
    except VirtbenchError as exc:
        if console.debug if console.configured else debug:
            traceback.print_exc()
        sys.stderr.write(f"virtbench: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("virtbench: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        if console.debug if console.configured else debug:
            traceback.print_exc()
            return INTERNAL_ERROR
        from virtbench.safeio import clip_message

        sys.stderr.write(f"virtbench: internal error: {type(exc).__name__}: "
                         f"{clip_message(str(exc))}\n"
                         "virtbench: rerun with --debug for the traceback\n")
        return INTERNAL_ERROR


def _dispatch(args_list: list[str]) -> int:
    """Parse and run; any exception is ``_main``'s to report (also one raised while the
    parser is built or the options are read)."""
    only = _only_module(args_list)
    top_help = only is None and any(a in ("-h", "--help") for a in args_list)
    parser = build_parser(only, summary=top_help)
    args = parser.parse_args(args_list)
    from virtbench import console

    console.configure(quiet=args.quiet, verbose=args.verbose, debug_on=args.debug)
    console.detail(f"virtbench {__version__} (Python {sys.version.split()[0]}, "
                   f"{Path(__file__).parent.parent})")
    if not getattr(args, "_run", None):
        # Only options (e.g. `virtbench -v`): the overview, as for bare `virtbench`.
        sys.stdout.write(OVERVIEW.format(version=__version__))
        return 0
    # SIGTERM behaves like Ctrl-C so every cleanup path (finally blocks) runs.
    signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    _sweep()
    rc: int = args._run(args)
    return rc


INTERNAL_ERROR = 70
"""Exit code of an unexpected error (sysexits' EX_SOFTWARE)."""


def _sweep() -> None:
    """What a killed virtbench left (documents stuck ``running``, work directories, cgroups,
    changed sysctls) is cleaned before any command runs (:mod:`virtbench.experiments.sweep`)."""
    from virtbench import console
    from virtbench.experiments.sweep import sweep

    try:
        sweep()
        from virtbench.fleet.ansible import sweep_masters

        sweep_masters(console.warn)
    except Exception as exc:  # the command asked for must still run
        console.warn(f"could not clean up after a killed run: {exc}")


def _sigterm_to_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
