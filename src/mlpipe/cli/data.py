"""Data in: `mlpipe bootstrap`, `simulate`, `ingest`, and `mlpipe data accept` (a change to data/ made by
hand, kept on purpose)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlpipe.cli.common import ROOT_OPTION, project, project_params


def bootstrap(
    root: ROOT_OPTION = Path("."),
    regenerate: Annotated[
        bool, typer.Option(help="Rebuild data/ from the source even if the DVC cache or remote has it.")
    ] = False,
) -> None:
    """Bring data/ to the hash data.dvc records (DVC cache or remote), else materialise the initial
    period from the source (deterministically); `dvc add` it, push to the remote, commit data.dvc."""
    from mlpipe.data.recorded import keep_as_recorded
    from mlpipe.data.snapshot import bootstrap as bootstrap_data
    from mlpipe.runtime.git import git_commit_paths

    paths = project(root)
    params = project_params(paths)
    if not regenerate:  # data/ changed by hand is restored (or refused), never snapshotted as it is
        for note in keep_as_recorded(paths, params):
            typer.echo(note)
    md5 = bootstrap_data(paths, params, regenerate=regenerate)
    commit = git_commit_paths(paths.root, ["data.dvc", ".gitignore"], f"data: initial period (md5 {md5})")
    typer.echo(
        f"data/ is at {md5} (data.dvc{', committed ' + commit[:8] if commit else ''}); "
        "pushed to the default DVC remote"
    )


def simulate(
    root: ROOT_OPTION = Path("."),
    next_: Annotated[bool, typer.Option("--next", help="Release the next period.")] = False,
) -> None:
    """Replay the source: release the period after the newest data into the landing zone (a source with a
    time column; others take new batches by `mlpipe ingest`)."""
    from mlpipe.data.frames import read_frame
    from mlpipe.data.landing import release_next_period, source_position
    from mlpipe.data.sources import get_source
    from mlpipe.errors import ConfigError

    if not next_:
        raise typer.BadParameter("say --next to release the next period")
    paths = project(root)
    params = project_params(paths)
    time_col = params.dataset.time_column
    if time_col is None or params.dataset.initial_period is None:
        raise ConfigError(
            "simulate: the source has no time column and initial period to continue from "
            "(rule: land new batches with `mlpipe ingest FILE`)"
        )
    landing_dir = paths.root / params.retrain.landing_dir
    dest = release_next_period(
        get_source(params, paths.root),
        source_position(paths.data, landing_dir, params),
        time_col,
        params.dataset.batch_freq,
        landing_dir,
    )
    if dest is None:
        typer.echo("the source has no more periods to release")
        raise typer.Exit(1)
    typer.echo(f"released {dest.relative_to(paths.root)} ({len(read_frame(dest))} rows)")


def ingest(file: Path, root: ROOT_OPTION = Path(".")) -> None:
    """Copy a data file (Parquet or CSV) into the landing zone; the next run validates it."""
    from mlpipe.data.landing import ingest_file

    paths = project(root)
    params = project_params(paths)
    dest = ingest_file(file.resolve(), paths.root / params.retrain.landing_dir)
    typer.echo(f"landed {dest.relative_to(paths.root)}")


data_app = typer.Typer(
    no_args_is_help=True,
    help="data/ itself: it changes only through batches; `accept` keeps a change made by hand, saying why.",
)


@data_app.command()
def accept(
    reason: Annotated[
        str, typer.Option("--reason", help="Why data/ changed by hand (goes into the commit).")
    ],
    root: ROOT_OPTION = Path("."),
) -> None:
    """Keep data/ as it is now (files deleted, edited or added by hand, which `mlpipe run` would otherwise
    restore or refuse): dvc add, push, and commit data.dvc with what changed and the reason."""
    from mlpipe.data.recorded import accept_as_is
    from mlpipe.runtime.lock import project_lock

    paths = project(root)
    with project_lock(paths.lock_file, timeout_s=0):  # never under a running retrain
        typer.echo(accept_as_is(paths, reason))
