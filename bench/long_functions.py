"""Print the functions in src/ longer than a limit (issue 11: at most 3 over 80 lines).

    .venv/bin/python bench/long_functions.py [--limit 80]

A function's length is its source lines from ``def`` to its last line (decorators, docstring
and comments included; nested functions count inside their parent and on their own).
tests/test_layers.py asserts the same limit.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def long_functions(limit: int = 80, src: Path = SRC) -> list[tuple[int, str]]:
    """(lines, 'path:qualified name') of every function longer than ``limit``, longest first."""
    found: list[tuple[int, str]] = []
    for path in sorted(src.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

        def visit(node: ast.AST, prefix: str, rel: str = str(path.relative_to(src))) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    name = f"{prefix}{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        assert child.end_lineno is not None
                        n = child.end_lineno - child.lineno + 1
                        if n > limit:
                            found.append((n, f"{rel}:{name}"))
                    visit(child, f"{name}.")

        visit(tree, "")
    return sorted(found, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=80)
    args = parser.parse_args()
    found = long_functions(args.limit)
    for n, name in found:
        print(f"{n:5d}  {name}")
    print(f"{len(found)} functions over {args.limit} lines in {SRC}")


if __name__ == "__main__":
    main()
