"""``python -m virtbench`` and the ``virtbench`` console script (``virtbench.__main__:main``).

Nothing but ``sys`` is imported before ``main`` runs: importing ``virtbench.cli`` (argparse,
re, ast: 0.1 s on a loaded machine) happens inside its ``try``, so a Ctrl-C then is one line
and exit 130 as at any later moment, not a ``KeyboardInterrupt`` traceback.
"""

import sys


def main() -> int:
    try:
        from virtbench.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("virtbench: interrupted\n")
        return 130
    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
