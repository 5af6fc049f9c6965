"""A new project for a user's own table (`mlpipe init`): params.yaml proposed from a profile of the initial
period's rows, dvc.yaml from the stage registry, git and DVC initialised with a local remote, the running
mlpipe pinned, all committed. The CLI builds an InitRequest and prints the InitResult."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class InitRequest:
    """What the user asked `mlpipe init` for (its options, as given)."""

    target: str
    data: str | None = None
    source: str | None = None
    sql: str | None = None
    url_env: str = "MLPIPE_SQL_URL"
    initial_start: str | None = None
    time: str | None = None
    time_format: str = "datetime"
    task: str | None = None
    positive: str | None = None
    into: Path = Path(".")
    name: str | None = None
    initial_end: str | None = None

    @property
    def periodic(self) -> str | None:
        """The periodic source (the user's loader or "sql"), None for files."""
        return self.source or ("sql" if self.sql else None)


@dataclass(frozen=True)
class InitResult:
    """The project made: where, its task, the rows profiled, and every decision with its reason."""

    root: Path
    task: str
    target: str
    rows: int
    files: int
    reasons: list[str]
    data_line: str
    pin_line: str
    commit: str | None


def check_request(req: InitRequest) -> Path:
    """The project directory, once the request names one source, a known time format and a directory that
    holds no project yet."""
    from mlpipe.config import PARAMS_FILE, TIME_FORMATS
    from mlpipe.errors import AlreadyExists, ConfigError
    from mlpipe.runtime.pin import LOCK_FILE, PYPROJECT

    if req.time_format not in TIME_FORMATS:
        raise ConfigError(
            f"--time-format: {req.time_format!r} unknown (rule: one of {', '.join(TIME_FORMATS)})"
        )
    root = Path(os.path.abspath(req.into))
    for taken in (root / PARAMS_FILE, root / "dvc.yaml", root / PYPROJECT, root / LOCK_FILE):
        if taken.exists():
            raise AlreadyExists(
                f"{taken}: already there (rule: init writes a new project; use another --into)"
            )
    if sum(x is not None for x in (req.data, req.source, req.sql)) != 1:
        raise ConfigError(
            "init: give --data FILE_OR_GLOB, --sql QUERY or --source package.module:load_period (rule: one)"
        )
    return root


def initial_frame(req: InitRequest, root: Path):
    """(the initial period's rows, the files read, the period): the only rows init profiles."""
    from mlpipe.data.sources import matching_files, parse_times
    from mlpipe.errors import ConfigError

    if req.periodic:
        df = period_source_rows(
            req.periodic,
            root,
            req.time,
            req.time_format,
            req.initial_start,
            req.initial_end,
            req.sql,
            req.url_env,
        )
        files = []
    else:
        files = matching_files(req.data, Path.cwd())
        df = read_table(files)
    time = req.time
    if time:
        if time not in df.columns:
            raise ConfigError(f"--time: no column {time!r} (rule: one of {', '.join(map(str, df.columns))})")
        df[time] = parse_times(df[time], req.time_format, time)
    if req.periodic:
        period = (req.initial_start, req.initial_end)
    else:
        period = period_of(df[time], req.initial_end) if time else None
    return initial_rows(df, time, period), files, period


def write_params(root: Path, text: str):
    """params.yaml written and loaded through mlpipe.config; removed again when the config refuses it."""
    from mlpipe.config import PARAMS_FILE, config_problems, load_params
    from mlpipe.errors import ConfigError

    root.mkdir(parents=True, exist_ok=True)
    header = "# Written by `mlpipe init` from a profile of the data; every value is yours to change.\n"
    (root / PARAMS_FILE).write_text(header + text, encoding="utf-8")
    try:
        return load_params(root / PARAMS_FILE)
    except ConfigError:
        (root / PARAMS_FILE).unlink()
        raise
    except Exception as exc:  # pydantic's own, should the profile propose something the config refuses
        (root / PARAMS_FILE).unlink()
        raise ConfigError(config_problems(exc)) from None


def write_tooling(root: Path, params, req: InitRequest, data_path: str | None) -> list[str]:
    """dvc.yaml (with the user's loader as a dependency of validate), .gitignore, git and DVC with the local
    remote. Returns the project's own code files to commit (the loader)."""
    import yaml

    from mlpipe.data.zone import user_source_file
    from mlpipe.pipeline.layout import project_pipeline
    from mlpipe.runtime.shell import run_tool

    own = user_source_file(req.source, root) if req.source else None
    pipeline = project_pipeline(params.task, [str(own.relative_to(root))] if own else None, vendored=True)
    top = req.source.partition(":")[0].split(".")[0] if req.source else ""
    own_code = [p for p in (top, f"{top}.py") if top and (root / p).exists()]  # the loader is code: in git
    (root / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")
    gitignore = root / ".gitignore"
    ignored = GITIGNORE
    if data_path is not None:  # their rows are versioned by DVC in data/ once taken in
        ignored += f"# the source files (their rows are versioned by DVC under data/)\n/{data_path}\n"
    gitignore.write_text((gitignore.read_text() if gitignore.exists() else "") + ignored, encoding="utf-8")
    if not (root / ".git").exists():
        run_tool(["git", "init", "-q", "-b", "main"], root)
    if not (root / ".dvc").exists():
        run_tool(["dvc", "init", "-q"], root)
    (root / ".dvc" / "config").write_text(DVC_CONFIG, encoding="utf-8")
    return own_code


def init_project(req: InitRequest) -> InitResult:
    """The whole of `mlpipe init`: check, profile, propose, write, pin, commit."""
    import yaml

    from mlpipe.config import PARAMS_FILE
    from mlpipe.data.profiling import propose
    from mlpipe.pipeline.estimators import check_estimator
    from mlpipe.runtime.git import git_commit_paths

    root = check_request(req)
    df, files, period = initial_frame(req, root)
    proposal = propose(df, req.target, req.time, req.task, req.positive)
    absolute = Path(os.path.abspath(req.data or root))
    path = str(absolute.relative_to(root)) if absolute.is_relative_to(root) else str(absolute)
    params = build_params(
        proposal,
        source=source_keys(req.source, req.sql, req.url_env, path),
        target=req.target,
        time=req.time,
        time_format=req.time_format,
        period=period,
        name=_name(req.name or f"{root.name}-{req.target}"),
        df=df,
    )
    loaded = write_params(root, with_estimator_note(yaml.safe_dump(params, sort_keys=False)))
    check_estimator(loaded.train.estimator, loaded.task, loaded.train.hyperparams)
    in_project = req.data is not None and absolute.is_relative_to(root)
    own_code = write_tooling(root, loaded, req, path if in_project else None)
    pin, pinned = pin_running_mlpipe(root, loaded.model.name)
    commit = git_commit_paths(
        root,
        [PARAMS_FILE, "dvc.yaml", ".gitignore", ".dvc", ".dvcignore", *own_code, *pinned],
        f"mlpipe init: {loaded.task} on {req.target}",
    )
    return InitResult(
        root=root,
        task=loaded.task,
        target=req.target,
        rows=len(df),
        files=len(files),
        reasons=list(proposal.reasons),
        data_line=data_line(loaded.dataset, req.time_format, period),
        pin_line=pin_line(pin),
        commit=commit,
    )
