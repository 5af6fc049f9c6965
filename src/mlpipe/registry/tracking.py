"""MLflow record of a pipeline run: params, metrics, lineage tags, dataset inputs, model, drift report;
and whether this exact state was recorded already (the identity of a training run in MLflow)."""

from __future__ import annotations

import getpass
import json
import logging
import os
import platform
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mlpipe.config import PARAMS_FILE, Params, ProjectPaths, flatten, read_params_dict
from mlpipe.data.frames import data_files, read_frame
from mlpipe.data.recorded import REASON_TRAILER
from mlpipe.data.snapshot import DATA_DVC
from mlpipe.model.artifact import MODEL_FILE, TRUSTED_TYPES, load_model_file
from mlpipe.model.loading import MANIFEST_FILE
from mlpipe.model.manifest import MODEL_PACKAGES, installed_versions
from mlpipe.pipeline.features import select_features
from mlpipe.pipeline.selection import read_selection, selection_line
from mlpipe.registry import tags as tag
from mlpipe.registry import views
from mlpipe.registry.client import local_store, mlflow_client
from mlpipe.registry.views import ensure_run_table_view
from mlpipe.runtime.git import git_commit, git_dirty, git_last_trailers
from mlpipe.runtime.lockfiles import dvc_file_md5, locked_versions, stage_output_hashes
from mlpipe.runtime.logs import event
from mlpipe.runtime.pin import MlpipeId, pin_mismatch, read_pin, running_mlpipe
from mlpipe.runtime.shell import pid_alive

# What the packaged model needs at load time, pinned from uv.lock.
MODEL_REQUIREMENTS = [*MODEL_PACKAGES, "mlflow"]
# Where runs logged before the logged model held the trained file kept their copy of artifacts/model
# (read for those runs only: a run now has one copy of its model, the logged model's).
MODEL_ARTIFACTS = "mlpipe/model"
KEY_PACKAGES = [
    "mlflow",
    "dvc",
    "prefect",
    "evidently",
    "scikit-learn",
    "pandas",
    "numpy",
    "skops",
    "pandera",
]
MAX_PARAM_LEN = 6000  # MLflow's limit on a param value


class NoPipInTheVenv(logging.Filter):
    """Drops MLflow's "Failed to resolve installed pip version" warning, printed on every run: a uv
    environment has no pip, and the model's requirements are pinned from uv.lock (conda.yaml lists `pip`
    unpinned, as the warning says). MLflow's other warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to resolve installed pip version")


NO_PIP_IN_THE_VENV = NoPipInTheVenv()
IDENTITY_KEYS = (tag.MODEL_SHA256, tag.GIT_COMMIT, tag.DATA_MD5, tag.PARAMS_SHA256)


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    experiment_id: str
    model_name: str
    model_uri: str
    metrics: dict[str, float]
    data_md5: str | None
    git_commit: str | None
    git_dirty: bool
    model_sha256: str
    already_recorded: bool = False
    unpinned: str = ""  # why the mlpipe that trained it is not the one the commit pins: never registered


def lineage_tags(paths: ProjectPaths, manifest: dict, trainer: MlpipeId | None = None) -> dict[str, str]:
    """Tags that tie a run to its code, data and stage outputs (who, when, which code, which data, which
    mlpipe: `trainer`, the running one unless given)."""
    import importlib.metadata

    commit = git_commit(paths.root) or ""
    trainer = trainer or running_mlpipe()
    tags = {
        tag.version_tag("mlpipe"): trainer.version,
        tag.MLPIPE_CODE: trainer.code_sha256,
        tag.GIT_COMMIT: commit,
        tag.MLFLOW_GIT_COMMIT: commit,
        tag.GIT_DIRTY: str(git_dirty(paths.root)).lower(),
        tag.DATA_MD5: dvc_file_md5(paths.root / "data.dvc") or "",
        tag.MODEL_SHA256: manifest["model_sha256"],
        tag.PARAMS_SHA256: manifest["params_sha256"],
        tag.SEED: str(manifest["seed"]),
        tag.USER: getpass.getuser(),
        tag.HOST: socket.gethostname(),
        tag.PYTHON: platform.python_version(),
    }
    if reason := " ".join(git_last_trailers(paths.root, DATA_DVC, REASON_TRAILER)):
        tags[tag.DATA_ACCEPTED] = reason
    lock = paths.root / "uv.lock"
    if lock.exists():
        from mlpipe.runtime.hashing import sha256_file

        tags[tag.UV_LOCK_SHA256] = sha256_file(lock)
    outputs = stage_output_hashes(paths.root / "dvc.lock")  # all of them: the artifact DVC_OUTPUTS_ARTIFACT
    for key, (stage, out_path) in tag.DVC_OUTPUT_TAGS.items():
        if md5 := outputs.get(stage, {}).get(out_path):
            tags[key] = md5
    for name in KEY_PACKAGES:
        tags[tag.version_tag(name)] = importlib.metadata.version(name)
    return tags


# What the stages read when dvc.yaml cannot say (a project without one): the params that shape the model.
MODEL_SECTIONS = ("seed", "task", "dataset", "features", "validate", "split", "train", "evaluate")
PARAMS_ARTIFACT = "mlpipe/params.yaml"  # every value, operations settings included (retrain, deploy, ...)


def stage_param_keys(dvc_yaml: Path) -> tuple[str, ...]:
    """The params.yaml keys the DVC stages name (`params:` of each stage in dvc.yaml): what shapes the model
    and its metrics. Without a readable dvc.yaml, MODEL_SECTIONS."""
    import yaml

    try:
        stages = (yaml.safe_load(dvc_yaml.read_text()) or {}).get("stages", {})
    except (OSError, yaml.YAMLError):
        return MODEL_SECTIONS
    keys = [k for body in stages.values() for k in (body or {}).get("params", []) if isinstance(k, str)]
    return tuple(dict.fromkeys(keys)) or MODEL_SECTIONS


def model_params(raw: dict, keys: tuple[str, ...]) -> dict[str, str]:
    """MLflow params of the run (pure): the flattened values under `keys` (the stages' params), a list as
    its items joined by ", " (one line in the UI, not a tall JSON block). Operations settings (retrain,
    deploy, monitor, sweep, gate) stay out: they are in the run's artifact PARAMS_ARTIFACT."""

    def shown(value) -> str:
        if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            return ", ".join(str(v) for v in value)
        return str(value)

    flat = flatten(ranges_as_values(raw))
    wanted = {k: v for k, v in flat.items() if any(k == key or k.startswith(f"{key}.") for key in keys)}
    return {k: shown(v)[:MAX_PARAM_LEN] for k, v in wanted.items()}


def ranges_as_values(mapping: dict) -> dict:
    """`{min: 1, max: 6000}` anywhere in `mapping` as the one value `1..6000` (`..6000` without a min): a
    range reads as one param, not two (pure)."""
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value and set(value) <= {"min", "max"}:
            out[key] = f"{value.get('min', '')}..{value.get('max', '')}"
        else:
            out[key] = ranges_as_values(value) if isinstance(value, dict) else value
    return out


def param_changes(now: dict[str, str], before: dict[str, str] | None, shown: int = 3) -> list[str]:
    """What differs from the previous run's params (pure), as `name old→new` with the key's last part
    (`learning_rate 0.1→0.05`); keys the previous run did not record are not compared. At most `shown`,
    then `+N more`."""
    if not before:
        return []
    changed = [
        f"{key.rsplit('.', 1)[-1]} {before[key]}→{value}"
        for key, value in sorted(now.items())
        if key in before and before[key] != value and not key.startswith("train.estimator_")
    ]
    return changed[:shown] + ([f"+{len(changed) - shown} more"] if len(changed) > shown else [])


def data_period(frames: dict[str, pd.DataFrame], time_col: str | None) -> str:
    """The rows' time span as dates (`2013-01-01..2013-04-30`), or their count without a time column."""
    if time_col and time_col in frames["train"].columns:
        both = pd.concat([frames[k][time_col] for k in ("train", "test")])
        return f"{str(both.min())[:10]}..{str(both.max())[:10]}"
    return f"{sum(len(f) for f in frames.values())} rows"


def run_name(version: str | None, period: str, changes: list[str], previous: dict | None) -> str:
    """The run's name, from what tells it apart (pure): the version it registers as, the params changed
    since the previous run and whether its data did, then the data's period (`v3 · learning_rate 0.1→0.05 ·
    2013-01-01..2013-05-31`, `v4 · new data · ...`); `first run` with none before, `same params and data`
    when only the code changed."""
    if previous is None:
        what = ["first run"]
    else:
        what = [*changes, *(["new data"] if previous.get("data_changed") else [])] or ["same params and data"]
    # what changed before the period: the runs table cuts a long name at its end
    return " · ".join([*([f"v{version}"] if version else []), *what, period])


def previous_training_run(client, experiment_id: str):
    """The newest finished training run of the experiment that was meant to be registered (not a
    reproduction, monitor or sweep run, nor an experiment from uncommitted changes), or None: what a new
    run's name says it changed from."""
    runs = client.search_runs(
        [experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        max_results=50,
        order_by=["attributes.start_time DESC"],
    )
    skip = (tag.KIND, tag.REPRODUCES, tag.EXPERIMENT)
    return next((r for r in runs if not any(k in r.data.tags for k in skip)), None)


def expected_version(client, name: str, sha256: str, data_md5: str) -> str:
    """The version registration will give this model (registry.models.register_model): the one holding the
    same bytes and data, else the next number. Read before registration, for names that cannot change
    afterwards (the logged model's); a registration by another project in between makes it one off."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return "1"
    same = [
        v
        for v in found
        if (v.tags or {}).get(tag.MODEL_SHA256) == sha256 and (v.tags or {}).get(tag.DATA_MD5, "") == data_md5
    ]
    if same:
        return str(max(int(v.version) for v in same))
    return str(max((int(v.version) for v in found), default=0) + 1)


def selection_fields(
    record: dict | None, fit_seconds: dict | None, model_sha256: str
) -> tuple[dict[str, str], dict[str, float]]:
    """MLflow params and metrics of what train.estimator auto chose (pure): the winner, metric and reason
    as params `train.estimator_chosen`, `train.selection_metric`, `train.selection_reason`; each candidate's
    validation score as `selection.<candidate>.<metric>`, and its fit seconds `selection.<candidate>.fit_s`
    when they were measured for this model. Nothing for a named estimator."""
    if not record:
        return {}, {}
    params = {
        "train.estimator_chosen": record["winner"],
        "train.selection_metric": record["metric"],
        "train.selection_reason": record["reason"][:MAX_PARAM_LEN],
    }
    metric = record["metric"]
    metrics = {
        f"selection.{c['name']}.{metric}": float(c["score"])
        for c in record["candidates"]
        if c["score"] is not None
    }
    if fit_seconds and fit_seconds.get("model_sha256") == model_sha256:
        metrics |= {f"selection.{name}.fit_s": float(s) for name, s in fit_seconds["fit_s"].items()}
    return params, metrics


def _fit_seconds(paths: ProjectPaths) -> dict | None:
    path = paths.selection_fit_seconds
    return json.loads(path.read_text()) if path.exists() else None


SCHEMA_HEAD_ROWS = 10_000


def _dataset_input(mlflow, df: pd.DataFrame, path: Path, md5: str, commit: str, name: str, target: str):
    # Digest = DVC's content hash of the file, so MLflow and DVC name the data the same way.
    source = f"{path.as_uri()}?git_commit={commit}&dvc_md5={md5}"
    dataset = mlflow.data.from_pandas(df, source=source, name=name, targets=target, digest=md5)
    if len(df) > SCHEMA_HEAD_ROWS:
        # MLflow infers a dataset's schema value by value in Python: 8M rows took 5.6 minutes. The same
        # schema comes from the rows that decide it (its value is cached; this sets it before first use).
        dataset.schema = mlflow.data.from_pandas(schema_rows(df), source=source).schema
    return dataset


def schema_rows(df: pd.DataFrame, head: int = SCHEMA_HEAD_ROWS) -> pd.DataFrame:
    """The rows from which MLflow infers the schema it would infer from all of `df`: the head (types;
    a column of validated data has one type), plus each column's first missing value (a column is
    `required` in MLflow's schema exactly when it has none)."""
    first_missing = {
        int(np.argmax(missing)) for missing in (df[c].isna().to_numpy() for c in df.columns) if missing.any()
    }
    return df.iloc[sorted(set(range(min(head, len(df)))) | first_missing)]


def ensure_experiment(client, name: str, artifact_root: Path | None, task: str) -> str:
    """Id of experiment `name`, created with its artifacts under `artifact_root` if new (None: where the
    tracking server keeps artifacts, as in team mode), opening in the UI's model-training view with
    mlpipe's saved run-table view (`task`'s headline metrics as columns)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        exp_id = client.create_experiment(
            name,
            artifact_location=(artifact_root / name).as_uri() if artifact_root else None,
            tags={tag.MLFLOW_EXPERIMENT_KIND: tag.MODEL_TRAINING_KIND},
        )
        ensure_run_table_view(client, exp_id, task, {})
        return exp_id
    if tag.MLFLOW_EXPERIMENT_KIND not in exp.tags:  # made before this rule: the UI would open GenAI
        client.set_experiment_tag(exp.experiment_id, tag.MLFLOW_EXPERIMENT_KIND, tag.MODEL_TRAINING_KIND)
    ensure_run_table_view(client, exp.experiment_id, task, exp.tags)
    return exp.experiment_id


def track_run(
    paths: ProjectPaths,
    params: Params,
    tracking_uri: str,
    experiment: bool = False,
    started_ms: int | None = None,
) -> RunRecord:
    """Log the finished pipeline's outputs as one MLflow run (not yet registered), started at `started_ms`
    (the pipeline's start: the run's duration is the pipeline's, not this step's).

    A clean tree whose commit, data and model were already recorded returns that run instead. An
    `experiment` (trained from uncommitted changes) is tagged unreproducible and is never registered.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow_client(tracking_uri)
    exp_id = ensure_experiment(
        client,
        params.model.experiment,
        paths.artifact_root if local_store(tracking_uri) else None,
        params.task,
    )
    fail_crashed_runs(client, exp_id)  # under the project lock: no other run of this project is logging
    manifest = json.loads(paths.manifest.read_text())
    metrics = json.loads(paths.metrics.read_text())
    trainer = running_mlpipe()  # the stages ran in this process: this mlpipe trained the model
    tags = lineage_tags(paths, manifest, trainer)
    pinned = read_pin(paths.root)
    unpinned = (pin_mismatch(pinned, trainer) if pinned else None) or ""
    if experiment or unpinned:
        tags[tag.EXPERIMENT] = f"unreproducible: {unpinned}" if unpinned else "unreproducible"
    previous = find_recorded_run(client, exp_id, tags)
    if previous is not None:
        run_id, model_uri = previous.info.run_id, tag.read(previous.data.tags, tag.MODEL_URI, "") or ""
    else:
        with warnings.catch_warnings():
            # MLflow warns that a file URI matches its local-file source twice, and about integer
            # outputs in the signature; neither is actionable here.
            warnings.simplefilter("ignore", UserWarning)
            logged = Logging(exp_id, tags, metrics, manifest, started_ms)
            run_id, model_uri = _log_run(mlflow, client, logged, paths, params)
    return RunRecord(
        run_id=run_id,
        experiment_id=exp_id,
        model_name=params.model.name,
        model_uri=model_uri,
        metrics=metrics,
        data_md5=tags[tag.DATA_MD5] or None,
        git_commit=tags[tag.GIT_COMMIT] or None,
        git_dirty=tags[tag.GIT_DIRTY] == "true",
        model_sha256=manifest["model_sha256"],
        already_recorded=previous is not None,
        unpinned=unpinned,
    )


def log_drift(tracking_uri: str, run_id: str, files: list[Path], summary: dict) -> None:
    """Attach a drift report (files + drift metrics) to a run."""
    client = mlflow_client(tracking_uri)
    for f in files:
        client.log_artifact(run_id, str(f), "drift")
    if summary.get("drift_share") is not None:
        client.log_metric(run_id, "drift_share", summary["drift_share"])
        client.log_metric(run_id, "drifted_columns", summary["drifted_columns"])
    client.set_tag(run_id, tag.DRIFT_SHARE, str(summary.get("drift_share")))


def model_requirements(root: Path) -> dict[str, str]:
    """What the packaged model needs, pinned: from the project's uv.lock when it has one (the bundled
    project), else the exact versions running (a project made by `mlpipe init` uses mlpipe's environment)."""
    lock = root / "uv.lock"
    if lock.exists():
        return locked_versions(lock, MODEL_REQUIREMENTS)
    return installed_versions(MODEL_REQUIREMENTS)


@dataclass(frozen=True)
class Logging:
    """What a new run is written from: the experiment, the lineage tags, metrics.json, the model's manifest
    and when the pipeline started (epoch ms; None: now)."""

    exp_id: str
    tags: dict[str, str]
    metrics: dict
    manifest: dict
    started_ms: int | None = None


def _naming(client, logging_: Logging, params: Params, frames, logged_params: dict[str, str]):
    """(run name, logged model name) of a new run: what tells it apart from the previous one."""
    tags = logging_.tags
    previous = previous_training_run(client, logging_.exp_id)
    before = None
    if previous is not None:
        before = {"data_changed": tag.read(previous.data.tags, tag.DATA_MD5, "") != tags[tag.DATA_MD5]}
    registrable = tag.EXPERIMENT not in tags
    version = (
        expected_version(client, params.model.name, tags[tag.MODEL_SHA256], tags[tag.DATA_MD5])
        if registrable
        else None
    )
    changes = param_changes(logged_params, previous.data.params if previous else None)
    name = run_name(version, data_period(frames, params.dataset.time_column), changes, before)
    if not registrable:
        name = f"experiment · {name}"
    model_name = f"{params.model.name}-v{version}" if version else f"{params.model.name}-experiment"
    return name, model_name


def _log_run(mlflow, client, logging_: Logging, paths: ProjectPaths, params: Params) -> tuple[str, str]:
    """Write the run (tags, params, metrics, inputs, model, artifacts); return (run id, model uri)."""
    from mlflow.models import Model, infer_signature

    exp_id, tags, metrics, manifest = logging_.exp_id, logging_.tags, logging_.metrics, logging_.manifest
    commit = tags[tag.GIT_COMMIT]
    outputs = stage_output_hashes(paths.root / "dvc.lock")
    split_hashes = outputs.get("split", {})
    model = load_model_file(paths.model, params.train.trusted_types)
    parts = {"train": (paths.train_split, "training"), "test": (paths.test_split, "evaluation")}
    frames = {name: read_frame(path) for name, (path, _) in parts.items()}
    X_example = select_features(frames["train"].head(5), params.features)
    requirements = [f"{n}=={v}" for n, v in model_requirements(paths.root).items()]
    raw_params = read_params_dict(paths.root / PARAMS_FILE)
    logged_params = model_params(raw_params, stage_param_keys(paths.root / "dvc.yaml"))
    logging.getLogger("mlflow.utils.environment").addFilter(NO_PIP_IN_THE_VENV)  # once: the same object
    # "Detected uv project: found uv.lock and pyproject.toml in ...": MLflow's note on every Model.log; the
    # run records the lock's hash itself (mlpipe.uv_lock)
    logging.getLogger("mlflow.utils.uv_utils").setLevel(logging.WARNING)
    selection = read_selection(paths.selection)
    chosen_params, chosen_metrics = selection_fields(selection, _fit_seconds(paths), manifest["model_sha256"])
    logged_params |= chosen_params
    name, model_name = _naming(client, logging_, params, frames, logged_params)
    started = client.create_run(exp_id, start_time=logging_.started_ms, run_name=name)
    with mlflow.start_run(run_id=started.info.run_id) as run:
        note = describe_run(
            run.info.run_id, tags, frames, params, data_files(paths.data), selection_line(selection)
        )
        source = {tag.MLFLOW_SOURCE_NAME: tag.SOURCE_NAME}
        mlflow.set_tags(tags | source | {tag.PID: str(os.getpid()), tag.MLFLOW_NOTE: note})
        mlflow.log_params(logged_params)
        datasets = {}
        for part, (path, context) in parts.items():
            rel = str(path.relative_to(paths.root))
            md5 = split_hashes.get(rel, "")
            datasets[part] = _dataset_input(
                mlflow, frames[part], path, md5, commit, part, params.dataset.target
            )
            mlflow.log_input(
                datasets[part], context=context, tags={"path": rel, "git_commit": commit, "dvc_md5": md5}
            )
        info = Model.log(
            artifact_path=None,
            name=model_name,
            flavor=trained_file_flavor(paths.model.parent),
            sk_model=model,
            serialization_format="skops",
            # what the file holds beyond skops' defaults, each allowed at training (MLflow's loader needs
            # the list; mlpipe's own loading never reads it back)
            skops_trusted_types=list(manifest.get("trusted_types", TRUSTED_TYPES)),
            signature=infer_signature(X_example, model.predict(X_example)),
            input_example=X_example,
            pip_requirements=requirements,
            metadata={"mlpipe_manifest": manifest},
            # the model page's "Logged from" (else the commit of mlpipe's own code) and description
            tags=source | {tag.MLFLOW_GIT_COMMIT: commit, tag.MLFLOW_NOTE: note},
        )
        # The test metrics linked to the logged model and the rows they were measured on: the model's page
        # lists its datasets and metrics (the training split is the run's input beside them).
        mlflow.log_metrics(
            {k: float(v) for k, v in metrics.items()}, model_id=info.model_id, dataset=datasets["test"]
        )
        mlflow.log_metrics(chosen_metrics)
        mlflow.log_text(
            (paths.root / PARAMS_FILE).read_text(encoding="utf-8"), PARAMS_ARTIFACT
        )  # every setting as written
        for directory, dest in (
            (paths.profile.parent, "mlpipe/validate"),
            (paths.plots, "mlpipe/plots"),
            (paths.split_record.parent, "mlpipe/split"),
        ):
            for f in sorted(directory.iterdir()):
                if f.is_file() and f.suffix != ".parquet":
                    mlflow.log_artifact(str(f), dest)
        mlflow.log_dict(outputs, tag.DVC_OUTPUTS_ARTIFACT)
        mlflow.log_artifact(str(paths.metrics), "mlpipe")
        mlflow.log_artifact(str(paths.predictions_record), "mlpipe")
        if selection:
            mlflow.log_artifact(str(paths.selection), "mlpipe")
        mlflow.set_tag(tag.MODEL_URI, info.model_uri)
    refresh_run_table_view(client, exp_id, params.task)
    return run.info.run_id, info.model_uri


def refresh_run_table_view(client, experiment_id: str, task: str) -> None:
    """The saved run-table view with a column per hyperparameter that now varies between the runs."""
    runs = client.search_runs([experiment_id], max_results=500, order_by=["attributes.start_time DESC"])
    varying = views.varying_params([r.data.params for r in runs if tag.KIND not in r.data.tags])
    ensure_run_table_view(client, experiment_id, task, client.get_experiment(experiment_id).tags, varying)


def describe_run(
    run_id: str,
    tags: dict[str, str],
    frames: dict[str, pd.DataFrame],
    params: Params,
    batches: list[Path],
    estimator_line: str = "",
) -> str:
    """The run's description (Markdown, shown on its MLflow page): what data, which batches, which code,
    what train.estimator auto chose (`estimator_line`, selection.selection_line), and how to get the model
    back (pure)."""
    time_col = params.dataset.time_column
    period = ""
    if time_col and time_col in frames["train"].columns:
        both = pd.concat([frames[k][time_col] for k in ("train", "test")])
        period = f", {both.min()} .. {both.max()}"
    names = [b.name for b in batches]
    shown = ", ".join(names if len(names) <= 6 else [*names[:3], "...", *names[-2:]])
    commit = tags[tag.GIT_COMMIT] or "no commit"
    # a run that is never registered is never gated: its description opens with that, where a registered
    # run's opens with the gate's decision (release.gate.record_decision)
    never = [f"**Not registered, never gated: {tags[tag.EXPERIMENT]}**", ""] if tag.EXPERIMENT in tags else []
    return "\n".join(
        [
            *never,
            f"**{params.task}** model of `{params.dataset.target}` ({params.train.estimator}), "
            f"trained by `mlpipe run`.",
            "",
            f"- data: DVC md5 `{tags[tag.DATA_MD5] or 'none'}`, {len(names)} file(s) in data/: {shown}",
            f"- rows: {len(frames['train'])} train / {len(frames['test'])} test "
            f"(split {params.split.method}{period})",
            *([f"- estimator: {estimator_line}"] if estimator_line else []),
            f"- code: git commit `{commit}`" + (" (dirty tree)" if tags[tag.GIT_DIRTY] == "true" else ""),
            f"- model sha256: `{tags[tag.MODEL_SHA256]}`",
            f"- stage outputs: the dvc.lock md5 of each in the artifact `{tag.DVC_OUTPUTS_ARTIFACT}`",
            f"- reproduce: `mlpipe reproduce {run_id}` (or `git checkout {commit[:12]} && dvc pull && "
            "dvc repro`)",
        ]
    )


def trained_file_flavor(model_dir: Path):
    """MLflow's sklearn flavor for `Model.log`, writing the trained file itself: the logged model holds
    the canonical bytes whose sha256 the run records (the flavor's own skops dump is another file) and
    the manifest beside them, so the registered version is the one copy every consumer loads and
    `mlflow models serve` serves."""
    import shutil
    from types import SimpleNamespace

    import mlflow.sklearn

    def save_model(path, **kwargs):
        mlflow.sklearn.save_model(path=path, **kwargs)
        for name in (MODEL_FILE, MANIFEST_FILE):
            shutil.copyfile(model_dir / name, Path(path) / name)

    return SimpleNamespace(__name__="mlflow.sklearn", save_model=save_model)


def fail_crashed_runs(client, experiment_id: str) -> list[str]:
    """Mark FAILED the runs left RUNNING by a process of this host that no longer exists (kill -9 or the
    OOM killer during `track`), with a tag saying so; returns their ids. Runs of live processes and of
    other hosts are left alone."""
    host = socket.gethostname()
    stale = client.search_runs(
        [experiment_id],
        filter_string=f"attributes.status = 'RUNNING' and tags.`{tag.HOST}` = '{host}'",
        max_results=200,
    )
    failed = []
    for run in stale:
        pid = run.data.tags.get(tag.PID, "")
        if pid.isdigit() and not pid_alive(int(pid)):
            client.set_tag(run.info.run_id, tag.CRASHED, f"process {pid} on {host} ended mid-run")
            client.set_terminated(run.info.run_id, "FAILED")
            failed.append(run.info.run_id)
    if failed:
        event("crashed_runs_failed", runs=",".join(failed))
    return failed


def find_recorded_run(client, experiment_id: str, tags: dict[str, str]):
    """A finished run already recorded for this exact model, commit and data from a clean tree, or None.

    Runs that never finished (a killed process) do not count: their record may be half written.
    """
    if tags[tag.GIT_DIRTY] != "false" or not tags[tag.GIT_COMMIT]:
        return None
    for old in (False, True):  # runs logged before the identity keys were shortened carry the old ones
        keys = {k: tag.spellings(k)[-1] if old else k for k in IDENTITY_KEYS}
        filt = " and ".join(f"tags.`{name}` = '{tags[k]}'" for k, name in keys.items())
        filt += f" and tags.`{tag.GIT_DIRTY}` = 'false' and attributes.status = 'FINISHED'"
        runs = client.search_runs(
            [experiment_id], filter_string=filt, max_results=1, order_by=["attributes.start_time DESC"]
        )
        if runs:
            return runs[0]
    return None


def renamed_for_version(name: str, version: str) -> str | None:
    """The run name `name` with the version it was registered as (`v3 · ...`), or None when it says so
    already (pure)."""
    head, sep, rest = name.partition(" · ")
    if head == f"v{version}":
        return None
    if head.startswith("v") and head[1:].isdigit():
        return f"v{version}{sep}{rest}"
    return f"v{version} · {name}"


def name_version(client, run_id: str, version: str) -> None:
    """The run's name corrected to the version it got, when registration gave another than expected (a
    version registered meanwhile by another project)."""
    if (new := renamed_for_version(client.get_run(run_id).info.run_name or "", version)) is not None:
        client.update_run(run_id, name=new)


def end_run_now(client, run_id: str) -> None:
    """The finished run's end set to now: its duration spans the pipeline, from the flow's start (the run's
    start_time) to the gate's decision and lineage."""
    import time

    client.set_terminated(run_id, "FINISHED", end_time=int(time.time() * 1000))
