"""Every `mlpipe.*` tag key mlpipe writes on MLflow runs and model versions, in one place."""

from __future__ import annotations

# lineage of a training run (who, when, which code, data, config)
GIT_COMMIT = "mlpipe.git_commit"
GIT_DIRTY = "mlpipe.git_dirty"
EXPERIMENT = "mlpipe.experiment"  # "unreproducible": trained from uncommitted changes, never registered
DATA_MD5 = "mlpipe.data_md5"
MODEL_SHA256 = "mlpipe.model_sha256"
PARAMS_SHA256 = "mlpipe.params_sha256"
# the train stage's derived seed (params.yaml's `seed` + the stage's offset 2), as the manifest records
# it; named so that it is not read as a second value of the param `seed`
SEED = "mlpipe.seed.train_derived"
USER = "mlpipe.user"
HOST = "mlpipe.host"
PID = "mlpipe.pid"  # the process that logs the run: a RUNNING run whose process is gone crashed
CRASHED = "mlpipe.crashed"  # set when a later run marks such a run FAILED
PYTHON = "mlpipe.python"
UV_LOCK_SHA256 = (
    "mlpipe.uv_lock_sha256"  # the locked environment the model was built in (when the project has one)
)
MODEL_URI = "mlpipe.model_uri"
DVC_PREFIX = "mlpipe.dvc."  # + "<stage>.<output path>": that output's md5 in dvc.lock
VERSION_PREFIX = "mlpipe.version."  # + package name: its installed version
DRIFT_SHARE = "mlpipe.drift_share"
KIND = "mlpipe.kind"  # runs that are not training runs: monitoring, reproduction, sweep, sweep-candidate
# MLflow's own keys that mlpipe sets
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_PARENT_RUN = "mlflow.parentRunId"
MLFLOW_NOTE = "mlflow.note.content"  # the run's description in the MLflow UI
MLFLOW_EXPERIMENT_KIND = "mlflow.experimentKind"  # which view the MLflow UI opens an experiment in
MODEL_TRAINING_KIND = "custom_model_development"  # the model-training view (runs, metrics), not GenAI

# the promotion gate and manual moves
GATE_PREFIX = "mlpipe.gate."  # + criterion: its verdict line
GATE_DECISION = "mlpipe.gate.decision"
GATE_FAILED = "mlpipe.gate.failed"
ROLLED_BACK = "mlpipe.rolled_back"

# reproduction
REPRODUCED = "mlpipe.reproduced"  # on the original run and its versions: the latest verdict
REPRODUCES = "mlpipe.reproduces"  # on a reproduction run: the run it rebuilt
REPRODUCTION_VERDICT = "mlpipe.reproduction.verdict"
REPRODUCTION_DIFFERENT = "mlpipe.reproduction.different"

# monitoring
MONITORS = "mlpipe.monitors"  # on a monitoring run: the champion run it watched
MONITOR_RETRAIN = "mlpipe.monitor.retrain"
MONITOR_RETIRE = "mlpipe.monitor.retire"
MONITOR_REASONS = "mlpipe.monitor.reasons"

# the sweep
SWEEP = "mlpipe.sweep"  # the parent sweep run (on candidates and on the winner's pipeline run)
SWEEP_INDEX = "mlpipe.sweep.index"
SWEEP_WORKER = "mlpipe.sweep.worker"
SWEEP_ERROR = "mlpipe.sweep.error"
SWEEP_TRAIN_MD5 = "mlpipe.sweep.train_md5"
SWEEP_WINNER = "mlpipe.sweep.winner"
SWEEP_WINNER_RUN = "mlpipe.sweep.winner_run"
SWEEP_PIPELINE_RUN = "mlpipe.sweep.pipeline_run"
SWEEP_MODEL_VERSION = "mlpipe.sweep.model_version"
SWEEP_PARAMS_COMMIT = "mlpipe.sweep.params_commit"


def dvc_output_tag(stage: str, path: str) -> str:
    """The tag holding the md5 of one stage output, e.g. mlpipe.dvc.split.artifacts/split/train.parquet."""
    return f"{DVC_PREFIX}{stage}.{path}"


def version_tag(package: str) -> str:
    return f"{VERSION_PREFIX}{package}"


def gate_tag(criterion: str) -> str:
    return f"{GATE_PREFIX}{criterion}"
