"""`mlpipe init` and `mlpipe upgrade`: the options, and what they print; the work is
mlpipe.pipeline.scaffold's (a new project) and runtime.project_env's (the pin)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def upgrade(root: Annotated[Path, typer.Option("--root", help="The project directory.")] = Path(".")) -> None:
    """Move this project (made by `mlpipe init`) to the running mlpipe: its wheel rebuilt into vendor/,
    pyproject.toml and uv.lock re-locked, dvc.yaml's train and evaluate depending on them, committed. The
    next `mlpipe run` retrains (its stages' dependencies changed) and the gate judges the new model."""
    import yaml

    from mlpipe.config import PARAMS_FILE
    from mlpipe.errors import MissingInput
    from mlpipe.pipeline.layout import LOCK_FILE, VENDOR, with_locked_stages
    from mlpipe.pipeline.scaffold import pin_line
    from mlpipe.runtime.environments import find_uv
    from mlpipe.runtime.git import git_commit_paths
    from mlpipe.runtime.project_env import upgrade_project

    root = root.resolve()
    if not (root / PARAMS_FILE).exists() or not (root / "dvc.yaml").exists():
        raise MissingInput(
            f"{root}: no {PARAMS_FILE} and dvc.yaml (rule: upgrade a project `mlpipe init` made)"
        )
    before, pin, paths = upgrade_project(root, find_uv(root))
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text())
    if (locked := with_locked_stages(pipeline, [LOCK_FILE, VENDOR])) != pipeline:
        (root / "dvc.yaml").write_text(yaml.safe_dump(locked, sort_keys=False), encoding="utf-8")
    was = f"mlpipe {before.short()}" if before else "no pinned mlpipe"
    commit = git_commit_paths(root, [*paths, "dvc.yaml"], f"mlpipe upgrade: {was} -> mlpipe {pin.short()}")
    typer.echo(f"mlpipe upgrade: {root}: {was} -> mlpipe {pin.short()}")
    typer.echo(f"  {pin_line(pin)}")
    if commit:
        typer.echo(f"committed {commit[:8]}; next: mlpipe run --root {root} (retrains; the gate judges it)")
    else:
        typer.echo("nothing changed: the project already pins the running mlpipe")


def init(
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    data: Annotated[
        str | None, typer.Option("--data", help="A CSV or Parquet file, or a glob of them.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="Your own loader package.module:load_period (in the project; needs --time)."),
    ] = None,
    sql: Annotated[
        str | None,
        typer.Option(
            "--sql",
            help="A SQL query with :start and :end bound to the period, run on the SQLAlchemy URL in "
            "$MLPIPE_SQL_URL (or --url-env); needs --time, --initial-start and --initial-end.",
        ),
    ] = None,
    url_env: Annotated[
        str, typer.Option("--url-env", help="With --sql: the environment variable holding the URL.")
    ] = "MLPIPE_SQL_URL",
    initial_start: Annotated[
        str | None, typer.Option(help="With --source or --sql: the first day of the initial period.")
    ] = None,
    time: Annotated[
        str | None, typer.Option("--time", help="The time column (time split, monthly batches).")
    ] = None,
    time_format: Annotated[
        str, typer.Option("--time-format", help="datetime | date | epoch_s | epoch_ms")
    ] = "datetime",
    task: Annotated[
        str | None, typer.Option("--task", help="binary | multiclass | regression (default: inferred).")
    ] = None,
    positive: Annotated[
        str | None,
        typer.Option("--positive", help="Binary: the positive class (default: the minority class)."),
    ] = None,
    into: Annotated[Path, typer.Option("--into", help="The project directory (created).")] = Path("."),
    name: Annotated[str | None, typer.Option(help="Registered model name (default: DIR-TARGET).")] = None,
    initial_end: Annotated[
        str | None,
        typer.Option(help="With --time: bootstrap rows before this date; later ones come as batches."),
    ] = None,
) -> None:
    """Write a ready project for your own table: params.yaml from a profile of the initial period's rows
    (task, positive class, features by dtype, physical limits only where the profile justifies them,
    required columns, leakage, identifiers and time proxies excluded with the reason), dvc.yaml, git and DVC
    initialised with a local remote. Then `mlpipe run` there."""
    from mlpipe.pipeline.scaffold import ESTIMATOR_LINE, InitRequest, init_project

    request = InitRequest(
        target=target,
        data=data,
        source=source,
        sql=sql,
        url_env=url_env,
        initial_start=initial_start,
        time=time,
        time_format=time_format,
        task=task,
        positive=positive,
        into=into,
        name=name,
        initial_end=initial_end,
    )
    made = init_project(request)
    typer.echo(
        f"mlpipe init: {made.root} ({made.task}, target {made.target}, "
        f"{made.rows} rows of {made.files} file(s))"
    )
    for line in made.reasons:
        typer.echo(f"  {line}")
    for line in (made.data_line, ESTIMATOR_LINE, made.pin_line):
        typer.echo(f"  {line}")
    committed = made.commit[:8] if made.commit else "(nothing new)"
    typer.echo(f"committed {committed}; next: mlpipe run --root {made.root}")
