"""The one registry of experiments: name -> the module that defines its ``SPEC``.

Adding an experiment is one module in ``virtbench/experiments/`` plus one line here (plus
its C program and its docs page); the command line, ``tune``, the report and the registry
test find it from here. Modules are imported when first asked for, so a command that uses
one experiment does not pay for the others.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing the spec module costs pydantic; `virtbench detect` must not
    from virtbench.experiments.spec import ExperimentSpec

# name: (its command words, its module). The spec repeats both; the registry test checks.
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "postmark": ("io postmark", "virtbench.experiments.postmark"),
    "seqread": ("io seqread", "virtbench.experiments.seqread"),
    "consolidate": ("consolidate", "virtbench.experiments.consolidate"),
    "cap": ("cap", "virtbench.experiments.cap"),
    "tune": ("tune", "virtbench.experiments.tune"),
    "migrate": ("migrate", "virtbench.experiments.migrate"),
}

# Command words that group several experiments (``virtbench io postmark``): their help.
GROUPS: dict[str, str] = {
    "io": "I/O experiments: Postmark small-file transactions, sequential read of a large file",
}


def get(name: str) -> ExperimentSpec[Any]:
    """The spec of experiment ``name`` (``KeyError`` if there is none)."""
    spec: ExperimentSpec[Any] = importlib.import_module(EXPERIMENTS[name][1]).SPEC
    return spec


def all_specs() -> list[ExperimentSpec[Any]]:
    return [get(name) for name in EXPERIMENTS]


def under(word: str) -> list[ExperimentSpec[Any]]:
    """The experiments whose command starts with ``word`` (``io``: postmark, seqread)."""
    return [get(name) for name, (cmd, _) in EXPERIMENTS.items() if cmd.split()[0] == word]


def command_words() -> list[str]:
    """The first command words of all experiments, in registry order, once each."""
    return list(dict.fromkeys(cmd.split()[0] for cmd, _ in EXPERIMENTS.values()))


def find(words: list[str]) -> tuple[ExperimentSpec[Any], list[str]] | None:
    """The experiment a command line names, and the words after its command."""
    for name, (cmd, _) in EXPERIMENTS.items():
        n = len(cmd.split())
        if words[:n] == cmd.split():
            return get(name), words[n:]
    return None


def help_of(word: str) -> str:
    """The one-line help of command ``word`` without importing its module (the top-level
    ``virtbench --help`` must stay fast): a group's, else the ``help="..."`` literal of its
    ``SPEC = ExperimentSpec(...)``; importing is the fallback."""
    if word in GROUPS:
        return GROUPS[word]
    name = next(n for n, (cmd, _) in EXPERIMENTS.items() if cmd.split()[0] == word)
    path = Path(__file__).with_name(EXPERIMENTS[name][1].rsplit(".", 1)[1] + ".py")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return get(name).help
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ExperimentSpec":
            for kw in node.keywords:
                if kw.arg == "help" and isinstance(kw.value, ast.Constant) \
                        and isinstance(kw.value.value, str):
                    return kw.value.value
    return get(name).help
