"""Every `mlpipe.*` tag key mlpipe writes on MLflow runs and model versions, in one place.

The MLflow UI shows a run's tags as chips of at most 300 px that cut the key as well as the value once
both are longer than 15 characters (KeyValueTag, charLimit 30, in MLflow 3.17's run page): a key whose
value is a hash or a run id is kept to 15 characters (`mlpipe.` + 8), or it shows as `mlpipe.git_…`.
"""

from __future__ import annotations

from collections.abc import Mapping

# lineage of a training run (who, when, which code, data, config)
GIT_COMMIT = "mlpipe.commit"  # the git commit the run was trained from (as mlflow.source.git.commit)
GIT_DIRTY = "mlpipe.git_dirty"
EXPERIMENT = "mlpipe.experiment"  # "unreproducible": trained from uncommitted changes, never registered
DATA_MD5 = "mlpipe.data_md5"
# why data/ holds a change made by hand (`mlpipe data accept --reason`), on runs trained on that data
DATA_ACCEPTED = "mlpipe.data_accepted"
MODEL_SHA256 = "mlpipe.sha256"  # sha256 of the model file (the canonical skops bytes) the run made
PARAMS_SHA256 = "mlpipe.params"  # sha256 of the params the train stage read (the manifest's params_sha256)
# the train stage's derived seed (params.yaml's `seed` + the stage's offset 2), as the manifest records
# it; named so that it is not read as a second value of the param `seed`
SEED = "mlpipe.seed.train_derived"
USER = "mlpipe.user"
HOST = "mlpipe.host"
PID = "mlpipe.pid"  # the process that logs the run: a RUNNING run whose process is gone crashed
CRASHED = "mlpipe.crashed"  # set when a later run marks such a run FAILED
PYTHON = "mlpipe.python"
# the mlpipe that trained the model: its version (version_tag("mlpipe")) and the hash of its code
# (runtime.pin.code_digest over the files of the packages it ships), and the lock's hash just below
MLPIPE_CODE = "mlpipe.code"
UV_LOCK_SHA256 = "mlpipe.uv_lock"  # sha256 of the uv.lock the model was built in (when the project has one)
MODEL_URI = "mlpipe.model"  # the logged model's URI (models:/m-...)
# The md5 (dvc.lock) of every stage output is in the run's artifact DVC_OUTPUTS_ARTIFACT, {stage: {path:
# md5}}; the outputs read at run time also have a short tag each: the training profile (the service checks
# the copy it loads), the train split (the monitor's reference data) and the test split (the rows the
# metrics were measured on).
DVC_OUTPUTS_ARTIFACT = "lineage/dvc_outputs.json"
PROFILE_MD5 = "mlpipe.profile"
TRAINSET_MD5 = "mlpipe.trainset"
TESTSET_MD5 = "mlpipe.testset"
DVC_OUTPUT_TAGS = {
    PROFILE_MD5: ("validate", "artifacts/validate/profile.json"),
    TRAINSET_MD5: ("split", "artifacts/split/train.parquet"),
    TESTSET_MD5: ("split", "artifacts/split/test.parquet"),
}
VERSION_PREFIX = "mlpipe.version."  # + package name: its installed version
DRIFT_SHARE = "mlpipe.drift_share"
KIND = "mlpipe.kind"  # runs that are not training runs: monitoring, reproduction, sweep, sweep-candidate
# MLflow's own keys that mlpipe sets
MLFLOW_GIT_COMMIT = "mlflow.source.git.commit"
MLFLOW_PARENT_RUN = "mlflow.parentRunId"
MLFLOW_NOTE = "mlflow.note.content"  # the description of a run or a logged model in the MLflow UI
MLFLOW_SOURCE_NAME = "mlflow.source.name"  # the UI's "Source" and "Logged from" (else "__main__.py")
SOURCE_NAME = "mlpipe run"
MLFLOW_EXPERIMENT_KIND = "mlflow.experimentKind"  # which view the MLflow UI opens an experiment in
MODEL_TRAINING_KIND = "custom_model_development"  # the model-training view (runs, metrics), not GenAI
MLFLOW_SAVED_VIEW_PREFIX = "mlflow.sharedViewState."  # + view id: a saved view of the experiment's run table

# the promotion gate and manual moves
GATE_PREFIX = "mlpipe.gate."  # + criterion: its verdict line
GATE_DECISION = "mlpipe.gate.decision"
GATE_FAILED = "mlpipe.gate.failed"
ROLLED_BACK = "mlpipe.rolled_back"
# on the run of the version `champion` names ("champion"), moved with the alias: the runs table's marker
CHAMPION_RUN = "mlpipe.champion"
# on a model version: "<verdict>:<HMAC-SHA256>" (registry.judged), written before `champion` may move to it
JUDGED = "mlpipe.judged"

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


# Runs logged before the keys were shortened carry these: readers fall back to them (`read`).
LEGACY_DVC_PREFIX = "mlpipe.dvc."  # + "<stage>.<output path>": one tag per stage output, its md5
LEGACY_KEYS = {
    GIT_COMMIT: "mlpipe.git_commit",
    MODEL_SHA256: "mlpipe.model_sha256",
    PARAMS_SHA256: "mlpipe.params_sha256",
    UV_LOCK_SHA256: "mlpipe.uv_lock_sha256",
    MODEL_URI: "mlpipe.model_uri",
    **{key: f"{LEGACY_DVC_PREFIX}{stage}.{path}" for key, (stage, path) in DVC_OUTPUT_TAGS.items()},
}


def read(tags: Mapping[str, str], key: str, default: str | None = None) -> str | None:
    """A run's tag `key`; for a run logged before that key was shortened, the value under its old key."""
    if key in tags:
        return tags[key]
    return tags.get(LEGACY_KEYS.get(key, key), default)


def spellings(key: str) -> tuple[str, ...]:
    """`key`, then its old key when it was shortened: a search for a tag's value must try both to find the
    runs and versions logged before."""
    old = LEGACY_KEYS.get(key)
    return (key, old) if old else (key,)


def legacy_dvc_outputs(tags: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """{stage: {path: md5}} from the one-tag-per-output layout of runs logged before DVC_OUTPUTS_ARTIFACT
    (empty for a run logged since)."""
    outputs: dict[str, dict[str, str]] = {}
    for key, md5 in tags.items():
        if key.startswith(LEGACY_DVC_PREFIX):
            stage, _, path = key[len(LEGACY_DVC_PREFIX) :].partition(".")
            outputs.setdefault(stage, {})[path] = md5
    return outputs


def version_tag(package: str) -> str:
    return f"{VERSION_PREFIX}{package}"


def gate_tag(criterion: str) -> str:
    return f"{GATE_PREFIX}{criterion}"
