"""``virtbench completion bash|zsh|fish``: print a shell completion script (docs/completion.md).

The script is generated from the same parser ``virtbench`` uses (every command and option),
by shtab; nothing runs at completion time, so completing costs the shell nothing."""

from __future__ import annotations

import argparse
import sys

NAME = "completion"
HELP = "print a shell completion script for bash, zsh or fish"
SHELLS = ("bash", "zsh", "fish")
EXAMPLES = (
    "virtbench completion bash > ~/.local/share/bash-completion/completions/virtbench",
    "virtbench completion zsh > ~/.zfunc/_virtbench   # with fpath+=~/.zfunc before compinit",
    "virtbench completion fish > ~/.config/fish/completions/virtbench.fish",
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def script(shell: str) -> str:
    import shtab

    from virtbench.cli import build_parser

    text: str = shtab.complete(build_parser(), shell=shell)
    return text if text.endswith("\n") else text + "\n"


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0
