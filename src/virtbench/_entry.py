"""The ``virtbench`` console script and ``python -m virtbench`` start here.

Until :func:`virtbench.cli.main` is running, a Ctrl-C has nothing to clean up, but Python's
handler would turn it into a ``KeyboardInterrupt`` traceback from whichever module was being
imported (seen at 20-50 ms under load). So the default action (the process ends, as by any
SIGINT, exit status 130 in the shell) stays until ``main`` installs the handler inside its
``try``. An ignored SIGINT (started with ``&`` from a script) stays ignored. Before this module
runs, Python itself is starting: a Ctrl-C there is Python's to report.
"""

from __future__ import annotations

import _signal  # the C module: ``signal`` imports ``enum``, a window of its own

if _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler:
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)


def main() -> int:
    from virtbench.cli import main as cli_main

    return cli_main()
