"""How much virtbench says on stderr: ``-q`` (errors and warnings only), default, ``-v``
(more detail), ``--debug`` (tracebacks of unexpected errors). Set once by ``virtbench.cli.main``
from the common options; read by every progress and info line. Standard library only."""

from __future__ import annotations

import sys

QUIET, NORMAL, VERBOSE = -1, 0, 1

level = NORMAL
debug = False
configured = False
"""Whether the command line's options were read (``--debug`` means what they say)."""


def configure(quiet: bool = False, verbose: int = 0, debug_on: bool = False) -> None:
    global level, debug, configured
    level = QUIET if quiet else NORMAL + max(0, verbose)
    debug = debug_on
    configured = True


def info(message: str) -> None:
    """A progress or info line (``virtbench: ...``); silent with ``-q``."""
    if level >= NORMAL:
        sys.stderr.write(f"virtbench: {message}\n")
        sys.stderr.flush()


def detail(message: str) -> None:
    """A line only ``-v`` shows."""
    if level >= VERBOSE:
        sys.stderr.write(f"virtbench: {message}\n")
        sys.stderr.flush()


def warn(message: str) -> None:
    """Always shown, also with ``-q``."""
    sys.stderr.write(f"virtbench: warning: {message}\n")
    sys.stderr.flush()
