"""`mlpipe init`: a ready project for a user's own table, from a profile of the data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# Tool state of a project: never committed.
GITIGNORE = """\
# project-local state of the tools: never committed (mlpipe init)
/mlruns/
/mlflow.db
/mlartifacts/
/.prefect/
/.dvcstore/
/artifacts/
/data
/landing/
/quarantine/
/dvc_plots/
/.ui-check/
/.mlpipe.lock
.mlpipe/
__pycache__/
"""
DVC_CONFIG = """\
[core]
    remote = local
    analytics = false
    check_update = false
['remote "local"']
    url = ../.dvcstore
"""


def _name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-") or "model"


def monitor_floor(task: str, target) -> float | None:
    """Retire below the trivial model: majority-class accuracy (multiclass), R² 0 (regression)."""
    if task == "multiclass":
        return round(float(target.value_counts(normalize=True).iloc[0]), 3)
    return 0.0 if task == "regression" else 0.55


def build_params(
    proposal, *, path: str, target: str, time: str | None, time_format: str, period, name: str, df
) -> dict:
    """params.yaml of the new project as a mapping (validated by the caller through mlpipe.config)."""
    from mlpipe.config import DEFAULT_MONITOR_METRIC, DEFAULT_TOLERANCE

    # time_column is written even when null: DVC tracks it as a param of the split stage
    dataset: dict = {"source": "files", "path": path, "target": target, "time_column": time}
    if time:
        dataset |= {
            "time_format": time_format,
            "initial_period": {"start": period[0], "end": period[1]},
            "batch_freq": "month",
        }
    if proposal.positive_class is not None:  # binary: listed in dvc.yaml as a param of stage train
        dataset["positive_class"] = proposal.positive_class
    return {
        "seed": 42,
        "task": proposal.task,
        "dataset": dataset,
        "features": {
            "categorical": proposal.categorical,
            "numerical": proposal.numerical,
            "leakage": proposal.leakage,
        },
        "validate": {
            "required_not_null": proposal.required_not_null,
            "max_null_rate": proposal.max_null_rate,
            "ranges": proposal.ranges,
        },
        "split": {"method": "time" if time else "random", "test_fraction": 0.2},
        "train": {"estimator": "hist_gradient_boosting", "n_jobs": 1, "hyperparams": {}},
        "evaluate": {"threshold": 0.5},
        "model": {"name": name, "experiment": name},
        "gate": {"tolerance": DEFAULT_TOLERANCE[proposal.task], "max_changed_share": 0.1},
        "monitor": {
            "metric": DEFAULT_MONITOR_METRIC[proposal.task],
            "floor": monitor_floor(proposal.task, df[target].dropna()),
        },
    }


def read_table(files: list[Path]):
    """The user's files as one frame, each read as a `files` source reads it (no declared types yet: the
    profile proposes them)."""
    import pandas as pd

    from mlpipe.config import FeaturesCfg
    from mlpipe.data.sources import read_source_file

    undeclared = FeaturesCfg(categorical=[], numerical=[])
    frames = [read_source_file(f, undeclared) for f in files]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def own_source_rows(source, root: Path, time, time_format, start, end):
    """The rows of the user's loader for the initial period (its file must live in the project)."""
    from datetime import date

    from mlpipe.config import DatasetCfg, FeaturesCfg
    from mlpipe.data.sources import user_source
    from mlpipe.data.zone import user_source_file
    from mlpipe.errors import ConfigError

    if not (time and start and end):
        raise ConfigError(
            "init --source: needs --time, --initial-start and --initial-end (rule: it loads a period)"
        )
    if user_source_file(source, root) is None:
        raise ConfigError(
            f"init --source: {source} is not a module of {root} (rule: your loader lives in the project)"
        )
    dataset = DatasetCfg(
        source=source,
        target="_",
        time_column=time,
        time_format=time_format,
        initial_period={"start": start, "end": end},
    )
    load = user_source(dataset, FeaturesCfg(categorical=[], numerical=[]), root)
    return load(date.fromisoformat(start), date.fromisoformat(end))


def period_of(times, until: str | None) -> tuple[str, str]:
    """[first day, `until` or the day after the last) of the time column, as ISO dates."""
    import pandas as pd

    first = times.min().normalize()
    end = pd.Timestamp(until, tz="UTC") if until else times.max().normalize() + pd.Timedelta(days=1)
    return first.date().isoformat(), end.date().isoformat()


def init(
    target: Annotated[str, typer.Option("--target", help="The column to predict.")],
    data: Annotated[
        str | None, typer.Option("--data", help="A CSV or Parquet file, or a glob of them.")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="Your own loader package.module:load_period (in the project; needs --time)."),
    ] = None,
    initial_start: Annotated[
        str | None, typer.Option(help="With --source: the first day of the initial period.")
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
    """Write a ready project for your own table: params.yaml from a profile of the data (task, features by
    dtype, ranges widened from the observed, required columns, leakage and identifiers excluded with the
    reason), dvc.yaml, git and DVC initialised with a local remote. Then `mlpipe run` there."""
    import os

    import yaml

    from mlpipe.config import PARAMS_FILE, TIME_FORMATS, config_problems, load_params
    from mlpipe.data.profiling import propose
    from mlpipe.data.sources import matching_files, parse_times
    from mlpipe.data.zone import user_source_file
    from mlpipe.errors import AlreadyExists, ConfigError
    from mlpipe.pipeline.estimators import resolve_estimator
    from mlpipe.pipeline.layout import project_pipeline
    from mlpipe.runtime.git import git_commit_paths
    from mlpipe.runtime.shell import run_tool

    if time_format not in TIME_FORMATS:
        raise ConfigError(f"--time-format: {time_format!r} unknown (rule: one of {', '.join(TIME_FORMATS)})")
    root = Path(os.path.abspath(into))
    for taken in (root / PARAMS_FILE, root / "dvc.yaml"):
        if taken.exists():
            raise AlreadyExists(
                f"{taken}: already there (rule: init writes a new project; use another --into)"
            )
    if (data is None) == (source is None):
        raise ConfigError("init: give --data FILE_OR_GLOB or --source package.module:load_period (rule: one)")
    if source:
        df, files = own_source_rows(source, root, time, time_format, initial_start, initial_end), []
    else:
        files = matching_files(data, Path.cwd())
        df = read_table(files)
    if time:
        if time not in df.columns:
            raise ConfigError(f"--time: no column {time!r} (rule: one of {', '.join(map(str, df.columns))})")
        df[time] = parse_times(df[time], time_format, time)
    period = (initial_start, initial_end) if source else period_of(df[time], initial_end) if time else None
    # The whole table is profiled, later rows too: rules from the initial months alone would refuse the
    # next season's batches (March's temperatures above January's range) as broken data.
    proposal = propose(df, target, time, task, positive)
    absolute = Path(os.path.abspath(data or root))
    path = str(absolute.relative_to(root)) if absolute.is_relative_to(root) else str(absolute)
    params = build_params(
        proposal,
        path=path,
        target=target,
        time=time,
        time_format=time_format,
        period=period,
        name=_name(name or f"{root.name}-{target}"),
        df=df,
    )
    if source:
        rest = {k: v for k, v in params["dataset"].items() if k not in ("source", "path")}
        params["dataset"] = {"source": source, **rest}
    root.mkdir(parents=True, exist_ok=True)
    header = "# Written by `mlpipe init` from a profile of the data; every value is yours to change.\n"
    (root / PARAMS_FILE).write_text(header + yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    try:
        loaded = load_params(root / PARAMS_FILE)
    except ConfigError:
        (root / PARAMS_FILE).unlink()
        raise
    except Exception as exc:  # pydantic's own, should the profile propose something the config refuses
        (root / PARAMS_FILE).unlink()
        raise ConfigError(config_problems(exc)) from None
    resolve_estimator(loaded.train.estimator, loaded.task, loaded.train.hyperparams)
    own = user_source_file(source, root) if source else None
    pipeline = project_pipeline(loaded.task, [str(own.relative_to(root))] if own else None)
    top = source.partition(":")[0].split(".")[0] if source else ""
    own_code = [p for p in (top, f"{top}.py") if top and (root / p).exists()]  # the loader is code: in git
    (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")
    gitignore = root / ".gitignore"
    ignored = GITIGNORE
    if data and absolute.is_relative_to(root):  # their rows are versioned by DVC in data/ once taken in
        ignored += f"# the source files (their rows are versioned by DVC under data/)\n/{path}\n"
    gitignore.write_text((gitignore.read_text() if gitignore.exists() else "") + ignored, encoding="utf-8")
    if not (root / ".git").exists():
        run_tool(["git", "init", "-q", "-b", "main"], root)
    if not (root / ".dvc").exists():
        run_tool(["dvc", "init", "-q"], root)
    (root / ".dvc" / "config").write_text(DVC_CONFIG, encoding="utf-8")
    commit = git_commit_paths(
        root,
        [PARAMS_FILE, "dvc.yaml", ".gitignore", ".dvc", ".dvcignore", *own_code],
        f"mlpipe init: {loaded.task} on {target}",
    )
    typer.echo(
        f"mlpipe init: {root} ({loaded.task}, target {target}, {len(df)} rows of {len(files)} file(s))"
    )
    for line in proposal.reasons:
        typer.echo(f"  {line}")
    where = f", time {time} ({time_format}), initial period {period[0]}..{period[1]}" if period else ""
    typer.echo(
        f"  data: {source or path}{where or ', no time column: random split, batches in arrival order'}"
    )
    typer.echo(f"committed {commit[:8] if commit else '(nothing new)'}; next: mlpipe run --root {root}")
