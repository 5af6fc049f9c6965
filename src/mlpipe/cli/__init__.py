"""The `mlpipe` command: one module per user task (data, pipeline, models, services, demo); this file
lists the commands in the order `mlpipe --help` shows them and maps every known refusal to its exit code."""

from __future__ import annotations

import os

import typer

from mlpipe.cli import data, demo, init, models, pipeline, services
from mlpipe.cli.common import short_help
from mlpipe.errors import MlpipeError
from mlpipe.runtime.logs import configure_logging
from mlpipe.runtime.shell import OFFLINE_ENV

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a refusal is one line (main below), never a rendered traceback
    help="Reproducible ML pipeline: DVC stages, MLflow record.",
)


def show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"mlpipe {version('mlpipe')}")
        raise typer.Exit()


@app.callback()
def root(
    _version: bool = typer.Option(
        False, "--version", callback=show_version, is_eager=True, help="Print mlpipe's version and exit."
    ),
) -> None:
    """Reproducible ML pipeline: DVC stages, MLflow record."""


for command in (
    init.init,
    init.upgrade,
    data.bootstrap,
    pipeline.run,
    data.simulate,
    data.ingest,
    pipeline.schedule,
    services.ui,
    services.plots,
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
    app.command(short_help=short_help(command))(command)
app.add_typer(data.data_app, name="data")


# Typer >= 0.24 raises its own vendored copy of click's exceptions, not click's: name the base class
# through Typer's public BadParameter so usage errors stay one line whichever click raised them.
USAGE_ERRORS = tuple(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


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
        if isinstance(exc, USAGE_ERRORS):  # one line: the command and what is wrong (--help says the rest)
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "mlpipe"
            typer.echo(f"{where}: {' '.join(exc.format_message().split())}", err=True)
            return exc.exit_code
        if isinstance(exc, typer.Abort):
            return 130
        raise
    return result if isinstance(result, int) else 0
