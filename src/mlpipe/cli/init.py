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


def feedback_as_batch(time: str | None) -> bool:
    """Whether a retrain verdict lands the labelled traffic as a batch: without a time column it is the only
    new data that comes by itself (files come by `mlpipe ingest`); with one, the source's next period brings
    the labelled rows, and the same events coming back through /feedback would be counted twice."""
    return time is None


def build_params(
    proposal, *, source: dict, target: str, time: str | None, time_format: str, period, name: str, df
) -> dict:
    """params.yaml of the new project as a mapping (validated by the caller through mlpipe.config)."""
    from mlpipe.config import DEFAULT_MONITOR_METRIC, DEFAULT_TOLERANCE

    # time_column is written even when null: DVC tracks it as a param of the split stage
    dataset: dict = {**source, "target": target, "time_column": time}
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
        "train": {"estimator": "auto", "n_jobs": 1, "hyperparams": {}},
        "evaluate": {"threshold": 0.5},
        "model": {"name": name, "experiment": name},
        "gate": {
            "tolerance": DEFAULT_TOLERANCE[proposal.task],
            "max_net_negative_flips": 0.01,
            "max_class_regression": 0.1,
        },
        "monitor": {
            "metric": DEFAULT_MONITOR_METRIC[proposal.task],
            "floor": monitor_floor(proposal.task, df[target].dropna()),
            "feedback_as_batch": feedback_as_batch(time),
        },
    }


# Why a new project's estimator is auto: written above the train section of its params.yaml.
ESTIMATOR_NOTE = """\
# train.estimator auto: at each training, a regularised linear model (logistic_regression, or ridge for
# regression) and hist_gradient_boosting, each with its defaults, are fitted on the older part of the train
# split and scored on its newest part (a seeded draw without a time column; the test split is never seen);
# the better one on the sweep metric (the task's default) is trained, and artifacts/model/selection.json
# says why. Nobody knows beforehand which fits a new table. Name one here to fix the choice or tune it.
"""


ESTIMATOR_LINE = (
    "estimator: auto (a linear model and hist_gradient_boosting compared on a validation part of the train "
    "split at each training; the better one is trained: see params.yaml)"
)


def with_estimator_note(text: str) -> str:
    """params.yaml text with ESTIMATOR_NOTE above its train section (pure)."""
    return text.replace("\ntrain:\n", f"\n{ESTIMATOR_NOTE}train:\n", 1)


def source_keys(source: str | None, sql: str | None, url_env: str, path: str) -> dict:
    """The dataset keys naming where rows come from."""
    if sql:
        return {"source": "sql", "query": sql, "url_env": url_env}
    return {"source": source} if source else {"source": "files", "path": path}


def data_line(dataset, time_format: str, period) -> str:
    """What init tells of the source: where rows come from, the period, and how later rows come in."""
    where = {"files": dataset.path, "sql": f"SQL on ${dataset.url_env}"}.get(dataset.source, dataset.source)
    if not period:
        return (
            f"data: {where}, no time column: random split, batches in arrival order; later files are taken "
            "in by `mlpipe ingest FILE` (a new file matching the path is not read by itself: "
            "`mlpipe run` names any it finds); on a retrain verdict `mlpipe monitor` lands the labelled "
            "traffic (/feedback) as a batch (monitor.feedback_as_batch: true)"
        )
    later = (
        "later periods are read from the same files by `mlpipe simulate --next`, or come as files "
        "through `mlpipe ingest FILE`"
        if dataset.source == "files"
        else "later periods come from the same source by `mlpipe simulate --next`"
    )
    return (
        f"data: {where}, time {dataset.time_column} ({time_format}), initial period {period[0]}..{period[1]} "
        f"(the only rows profiled); {later}; on a retrain verdict `mlpipe monitor` fetches the next period "
        "that has ended (labelled traffic is not landed, monitor.feedback_as_batch: false: the source brings "
        "those events, they would count twice)"
    )


def read_table(files: list[Path]):
    """The user's files as one frame, each read as a `files` source reads it (no declared types yet: the
    profile proposes them)."""
    import pandas as pd

    from mlpipe.config import FeaturesCfg
    from mlpipe.data.sources import read_source_file

    undeclared = FeaturesCfg(categorical=[], numerical=[])
    frames = [read_source_file(f, undeclared) for f in files]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def period_source_rows(source: str, root: Path, time, time_format, start, end, query=None, url_env=None):
    """The rows of a periodic source for the initial period: the user's loader (its file must live in the
    project) or `sql` (`query` on the URL in $`url_env`)."""
    from datetime import date

    from mlpipe.config import DatasetCfg, FeaturesCfg
    from mlpipe.data.sources import sql_source, user_source
    from mlpipe.data.zone import user_source_file
    from mlpipe.errors import ConfigError

    flag = "--sql" if source == "sql" else "--source"
    if not (time and start and end):
        raise ConfigError(
            f"init {flag}: needs --time, --initial-start and --initial-end (rule: it loads a period)"
        )
    if source != "sql" and user_source_file(source, root) is None:
        raise ConfigError(
            f"init --source: {source} is not a module of {root} (rule: your loader lives in the project)"
        )
    dataset = DatasetCfg(
        source=source,
        query=query,
        url_env=url_env or "MLPIPE_SQL_URL",
        target="_",
        time_column=time,
        time_format=time_format,
        initial_period={"start": start, "end": end},
    )
    undeclared = FeaturesCfg(categorical=[], numerical=[])
    load = sql_source(dataset, undeclared) if source == "sql" else user_source(dataset, undeclared, root)
    return load(date.fromisoformat(start), date.fromisoformat(end))


def initial_rows(df, time: str | None, period: tuple[str, str] | None):
    """The rows of the initial period, the only ones init profiles: rules and features drawn from later rows
    would describe data the first model never sees (the bootstrap takes in this period alone)."""
    import pandas as pd

    from mlpipe.errors import ConfigError

    if not time or period is None:
        return df
    t = df[time]
    keep = (t >= pd.Timestamp(period[0], tz="UTC")) & (t < pd.Timestamp(period[1], tz="UTC"))
    if not keep.any():
        raise ConfigError(
            f"initial period {period[0]}..{period[1]}: no rows of {time} in it "
            f"(rule: the data spans {t.min()}..{t.max()})"
        )
    return df[keep].reset_index(drop=True)


def period_of(times, until: str | None) -> tuple[str, str]:
    """[first day, `until` or the day after the last) of the time column, as ISO dates."""
    import pandas as pd

    first = times.min().normalize()
    end = pd.Timestamp(until, tz="UTC") if until else times.max().normalize() + pd.Timedelta(days=1)
    return first.date().isoformat(), end.date().isoformat()


def pin_running_mlpipe(root: Path, name: str):
    """(pin, paths to commit): the running mlpipe pinned in `root` (runtime.project_env.pin_project)."""
    from mlpipe.runtime.environments import find_uv
    from mlpipe.runtime.project_env import pin_project

    return pin_project(root, name, find_uv(root))


def pin_line(pin) -> str:
    """What init and upgrade tell of the pin."""
    return (
        f"environment: mlpipe {pin.short()} pinned: its wheel {pin.wheel} (DVC-tracked, pushed), "
        "pyproject.toml and uv.lock (every package, offline) committed; uv.lock and vendor are dependencies "
        "of train and evaluate. Another mlpipe refuses to run it until `mlpipe upgrade`"
    )


def upgrade(root: Annotated[Path, typer.Option("--root", help="The project directory.")] = Path(".")) -> None:
    """Move this project (made by `mlpipe init`) to the running mlpipe: its wheel rebuilt into vendor/,
    pyproject.toml and uv.lock re-locked, dvc.yaml's train and evaluate depending on them, committed. The
    next `mlpipe run` retrains (its stages' dependencies changed) and the gate judges the new model."""
    import yaml

    from mlpipe.config import PARAMS_FILE
    from mlpipe.errors import MissingInput
    from mlpipe.pipeline.layout import LOCK_FILE, VENDOR, with_locked_stages
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


def init(  # noqa: PLR0915 -- issue 31 moves scaffolding, git and DVC into a library step
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
    import os

    import yaml

    from mlpipe.config import PARAMS_FILE, TIME_FORMATS, config_problems, load_params
    from mlpipe.data.profiling import propose
    from mlpipe.data.sources import matching_files, parse_times
    from mlpipe.data.zone import user_source_file
    from mlpipe.errors import AlreadyExists, ConfigError
    from mlpipe.pipeline.estimators import check_estimator
    from mlpipe.pipeline.layout import project_pipeline
    from mlpipe.runtime.git import git_commit_paths
    from mlpipe.runtime.pin import LOCK_FILE, PYPROJECT
    from mlpipe.runtime.shell import run_tool

    if time_format not in TIME_FORMATS:
        raise ConfigError(f"--time-format: {time_format!r} unknown (rule: one of {', '.join(TIME_FORMATS)})")
    root = Path(os.path.abspath(into))
    for taken in (root / PARAMS_FILE, root / "dvc.yaml", root / PYPROJECT, root / LOCK_FILE):
        if taken.exists():
            raise AlreadyExists(
                f"{taken}: already there (rule: init writes a new project; use another --into)"
            )
    if sum(x is not None for x in (data, source, sql)) != 1:
        raise ConfigError(
            "init: give --data FILE_OR_GLOB, --sql QUERY or --source package.module:load_period (rule: one)"
        )
    periodic = source or ("sql" if sql else None)
    if periodic:
        rows = period_source_rows(periodic, root, time, time_format, initial_start, initial_end, sql, url_env)
        df, files = rows, []
    else:
        files = matching_files(data, Path.cwd())
        df = read_table(files)
    if time:
        if time not in df.columns:
            raise ConfigError(f"--time: no column {time!r} (rule: one of {', '.join(map(str, df.columns))})")
        df[time] = parse_times(df[time], time_format, time)
    period = (initial_start, initial_end) if periodic else period_of(df[time], initial_end) if time else None
    df = initial_rows(df, time, period)
    proposal = propose(df, target, time, task, positive)
    absolute = Path(os.path.abspath(data or root))
    path = str(absolute.relative_to(root)) if absolute.is_relative_to(root) else str(absolute)
    params = build_params(
        proposal,
        source=source_keys(source, sql, url_env, path),
        target=target,
        time=time,
        time_format=time_format,
        period=period,
        name=_name(name or f"{root.name}-{target}"),
        df=df,
    )
    root.mkdir(parents=True, exist_ok=True)
    header = "# Written by `mlpipe init` from a profile of the data; every value is yours to change.\n"
    text = with_estimator_note(yaml.safe_dump(params, sort_keys=False))
    (root / PARAMS_FILE).write_text(header + text, encoding="utf-8")
    try:
        loaded = load_params(root / PARAMS_FILE)
    except ConfigError:
        (root / PARAMS_FILE).unlink()
        raise
    except Exception as exc:  # pydantic's own, should the profile propose something the config refuses
        (root / PARAMS_FILE).unlink()
        raise ConfigError(config_problems(exc)) from None
    check_estimator(loaded.train.estimator, loaded.task, loaded.train.hyperparams)
    own = user_source_file(source, root) if source else None
    pipeline = project_pipeline(loaded.task, [str(own.relative_to(root))] if own else None, vendored=True)
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
    pin, pinned = pin_running_mlpipe(root, loaded.model.name)
    commit = git_commit_paths(
        root,
        [PARAMS_FILE, "dvc.yaml", ".gitignore", ".dvc", ".dvcignore", *own_code, *pinned],
        f"mlpipe init: {loaded.task} on {target}",
    )
    typer.echo(
        f"mlpipe init: {root} ({loaded.task}, target {target}, {len(df)} rows of {len(files)} file(s))"
    )
    for line in proposal.reasons:
        typer.echo(f"  {line}")
    typer.echo(f"  {data_line(loaded.dataset, time_format, period)}")
    typer.echo(f"  {ESTIMATOR_LINE}")
    typer.echo(f"  {pin_line(pin)}")
    typer.echo(f"committed {commit[:8] if commit else '(nothing new)'}; next: mlpipe run --root {root}")
