"""`mlpipe demo`: the whole story on the bundled data, in a fresh clone of the project; the story itself
is `mlpipe.flows.demo.run_demo`, this command only picks the clone's directory and prints."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.cli.common import ROOT_OPTION, project


def demo(
    root: ROOT_OPTION = Path("."),
    dir_: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="A new directory for the demo's clone (default: .mlpipe/demo-<time> in the project).",
        ),
    ] = None,
    traffic_rows: Annotated[int, typer.Option("--traffic-rows", help="Flights replayed as traffic.")] = 3000,
) -> None:
    """The whole story in a fresh clone: train, serve, new data and traffic, monitor finds drift,
    retrain, gate, hot swap; then a table of what happened and where to look."""
    from mlpipe.flows.demo import demo_table, run_demo

    paths = project(root)
    dest = (dir_ or paths.root / ".mlpipe" / time.strftime("demo-%Y%m%dT%H%M%S")).resolve()
    result = run_demo(paths.root, dest, traffic_rows, typer.echo)
    typer.echo("\n" + demo_table(result))
