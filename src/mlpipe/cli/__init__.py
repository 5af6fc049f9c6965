"""The `mlpipe` command: one module per user task (data, pipeline, models, services, demo); this file
lists the commands in the order `mlpipe --help` shows them and maps every known refusal to its exit code."""

from __future__ import annotations

import os

import typer

from mlpipe.cli import data, demo, init, models, pipeline, services
from mlpipe.errors import MlpipeError
from mlpipe.runtime.logs import configure_logging
from mlpipe.runtime.shell import OFFLINE_ENV

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Reproducible ML pipeline: DVC stages, MLflow record."
)
for command in (
    init.init,
    data.bootstrap,
    pipeline.run,
    data.simulate,
    data.ingest,
    pipeline.schedule,
    services.ui,
    models.reproduce,
    models.lineage,
    models.diff,
    models.promote,
    models.rollback,
    services.serve,
    demo.demo,
    pipeline.monitor,
    pipeline.sweep,
):
    app.command()(command)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mlpipe` script; returns the exit code."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line per event, no bars
    configure_logging()
    try:
        result = app(args=argv, prog_name="mlpipe", standalone_mode=False)
    except (
        MlpipeError
    ) as exc:  # a refusal mlpipe knows: one line; anything else is a bug and keeps its traceback
        typer.echo(f"mlpipe: {exc}", err=True)
        return exc.exit_code
    except Exception as exc:  # click's usage errors carry their own exit codes
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 130
        raise
    return result if isinstance(result, int) else 0
