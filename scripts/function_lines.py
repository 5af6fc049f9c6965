"""Fails when a function's body is longer than MAX_BODY_LINES in the thin top layers (flows, cli, serving):
the guardrail of issue 31 on length, beside ruff's complexity and statement floors (`make lint`).

A body runs from its first statement to the function's last line, the docstring included (it is the
first statement), so Typer option declarations in a signature do not count and a long explanation does.
Nested functions count in their own right and inside the function that holds them. Standard library
only: `python scripts/function_lines.py [DIR ...]` prints one `path:line name N lines` per offender and
exits 1 when there is one; the default directories are the three layers under src/mlpipe.

Usage: python scripts/function_lines.py [--max N] [DIR ...]"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from pathlib import Path

MAX_BODY_LINES = 60
DEFAULT_DIRS = ("src/mlpipe/flows", "src/mlpipe/cli", "src/mlpipe/serving")

# The justified exceptions, by path (relative to the directory scanned from, as printed) and qualified
# name, each with its reason. Keep it short: a new entry needs a reason a reviewer would accept.
EXCEPTIONS: dict[str, str] = {
    "src/mlpipe/serving/connections.py:guarded_protocol": (
        "a class factory: one HttpToolsProtocol subclass over the limits, probes and admission it closes"
        " over; its length is that class's methods, each short"
    ),
}

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
Function = ast.FunctionDef | ast.AsyncFunctionDef


def body_lines(node: Function) -> int:
    """Lines from the first body statement (the docstring, if any) to the function's end."""
    return node.end_lineno - node.body[0].lineno + 1


def functions(
    tree: ast.AST, prefix: str = ""
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function and method of `tree` with its qualified name (Class.method, outer.inner)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, _FUNCTIONS):
            name = f"{prefix}{node.name}"
            yield name, node
            yield from functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def offenders(dirs: list[Path], limit: int, exceptions: dict[str, str]) -> list[str]:
    """`path:line name N lines` for each function over `limit` body lines, not excepted."""
    found = []
    for directory in dirs:
        for path in sorted(directory.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for name, node in functions(tree):
                n = body_lines(node)
                if n > limit and f"{path.as_posix()}:{name}" not in exceptions:
                    found.append(f"{path.as_posix()}:{node.lineno} {name} {n} lines")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=MAX_BODY_LINES, help="most body lines allowed")
    parser.add_argument("dirs", nargs="*", type=Path, default=[Path(d) for d in DEFAULT_DIRS])
    args = parser.parse_args(argv)
    found = offenders(args.dirs, args.max, EXCEPTIONS)
    for line in found:
        print(line)
    if found:
        print(
            f"{len(found)} function(s) over {args.max} body lines; the justified exceptions: EXCEPTIONS here"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
