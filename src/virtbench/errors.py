"""User-facing errors: one clear line, non-zero exit, never a traceback."""

from __future__ import annotations


class VirtbenchError(Exception):
    """Printed by the CLI as one line (``virtbench: error: ...``); exits with ``exit_code``."""

    exit_code: int = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        from virtbench.safeio import clip_message

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
