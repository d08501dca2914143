"""User-facing errors: one clear line, non-zero exit, never a traceback."""

from __future__ import annotations

import re

MAX_QUOTE = 200
"""The most characters of any input an error message quotes."""


class VirtbenchError(Exception):
    """Printed by the CLI as one line (``virtbench: error: ...``); exits with ``exit_code``."""

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        # One line, and at most MAX_QUOTE characters of any input it quotes (a 10 MB line).
        super().__init__(clip_message(str(message)))
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(VirtbenchError):
    """Bad input from the user (unknown test, bad number, missing file)."""

    exit_code = 2


class EnvironmentUnsupported(VirtbenchError):
    """The machine cannot do what was asked (no compiler, no QEMU, no cgroup controller)."""

    exit_code = 3


def clip_message(message: str, word: int = MAX_QUOTE, total: int = 3 * MAX_QUOTE) -> str:
    """An error message made safe to print on one line: control characters escaped, any
    run of more than ``word`` non-blank characters cut, the whole at most ``total``."""
    if len(message) <= word and message.isprintable():
        return message
    head = message[: total * 4]
    head = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in head)
    out = re.sub(rf"\S{{{word + 1},}}",
                 lambda m: f"{m.group()[:word]}... ({len(m.group()) - word} more characters)",
                 head)
    if len(out) > total or len(message) > len(head):
        out = out[:total] + f"... ({len(message)} characters in all)"
    return out
