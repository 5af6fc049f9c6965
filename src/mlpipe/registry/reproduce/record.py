"""What a training run recorded about itself (tags and the stage-output artifact `track_run` wrote), read back
from MLflow, and whether it can be reproduced at all."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlpipe.errors import Refused
from mlpipe.registry import tags as tag

TEST_SPLIT = "artifacts/split/test.parquet"


@dataclass(frozen=True)
class Recorded:
    """What a training run recorded about itself."""

    run_id: str
    experiment_id: str
    commit: str
    dirty: bool
    data_md5: str
    model_sha256: str
    stage_outputs: dict[str, str]  # "stage:path" -> md5
    metrics: dict[str, float]
    versions: dict[str, str]
    predictions_sha256: str | None = None
    python: str = ""  # the interpreter's version the run was recorded with
    mlpipe_code: str = ""  # the code hash of the mlpipe that trained it (runtime.pin), when recorded


def recorded_from_run(run, dvc_outputs: dict[str, dict[str, str]] | None = None) -> Recorded:
    """Parse the record of a training run (pure): its lineage tags, and `dvc_outputs`, the md5 of every
    stage output ({stage: {path: md5}}, its artifact tag.DVC_OUTPUTS_ARTIFACT); None: the one tag per
    output that runs logged before that artifact carry."""
    tags = run.data.tags
    if not tag.read(tags, tag.MODEL_SHA256):
        raise Refused(f"run {run.info.run_id} is not an mlpipe training run (no {tag.MODEL_SHA256} tag)")
    outputs = tag.legacy_dvc_outputs(tags) if dvc_outputs is None else dvc_outputs
    return Recorded(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        commit=tag.read(tags, tag.GIT_COMMIT, ""),
        dirty=tags.get(tag.GIT_DIRTY, "true") != "false",
        data_md5=tags.get(tag.DATA_MD5, ""),
        model_sha256=tag.read(tags, tag.MODEL_SHA256),
        stage_outputs={f"{s}:{p}": md5 for s, outs in outputs.items() for p, md5 in outs.items()},
        metrics=dict(run.data.metrics),
        versions={
            k[len(tag.VERSION_PREFIX) :]: v for k, v in tags.items() if k.startswith(tag.VERSION_PREFIX)
        },
        python=tags.get(tag.PYTHON, ""),
        mlpipe_code=tags.get(tag.MLPIPE_CODE, ""),
    )


def read_record(client, run_id: str) -> Recorded:
    """The record of training run `run_id`, its stage outputs' md5s from its artifact
    tag.DVC_OUTPUTS_ARTIFACT (a run logged before that artifact: from its per-output tags)."""
    run = client.get_run(run_id)
    rec = recorded_from_run(run)
    if rec.stage_outputs:  # logged before the artifact
        return rec
    return recorded_from_run(run, recorded_dvc_outputs(client, run_id))


def recorded_dvc_outputs(client, run_id: str) -> dict[str, dict[str, str]]:
    """{stage: {path: md5}} of the run's artifact tag.DVC_OUTPUTS_ARTIFACT; empty when it has none."""
    folder = tag.DVC_OUTPUTS_ARTIFACT.rpartition("/")[0]
    if not any(f.path == tag.DVC_OUTPUTS_ARTIFACT for f in client.list_artifacts(run_id, folder)):
        return {}
    with tempfile.TemporaryDirectory(prefix="mlpipe-record-") as tmp:
        return json.loads(Path(client.download_artifacts(run_id, tag.DVC_OUTPUTS_ARTIFACT, tmp)).read_text())


def refusal(rec: Recorded, commit_exists: bool) -> str | None:
    """Why this record cannot be reproduced, or None (pure)."""
    if not rec.commit:
        return (
            f"run {rec.run_id} has no git commit recorded; only runs made by `mlpipe run` inside a git "
            "repository can be reproduced"
        )
    if rec.dirty:
        return (
            f"run {rec.run_id} was recorded from a dirty tree "
            f"(uncommitted changes on top of {rec.commit[:12]}): "
            "the code that trained it is in no commit. Commit your changes and run `mlpipe run` again; "
            "reproduce that run"
        )
    if not commit_exists:
        return (
            f"commit {rec.commit} of run {rec.run_id} no longer exists in this repository "
            "(history rewritten, "
            "or a clone without it): fetch it (git fetch --all) or reproduce in a clone that has it"
        )
    if not rec.data_md5:
        return f"run {rec.run_id} has no DVC data hash recorded (tag mlpipe.data_md5)"
    return None


def cached_output(root: Path, md5: str | None, fallback: Path | None) -> Path | None:
    """A stage output as recorded (from the project's DVC cache by its md5); `fallback` when absent."""
    from dvc.repo import Repo

    if md5:
        with Repo(str(root)) as repo:
            path = Path(repo.cache.local.oid_to_path(md5))
        if path.exists():
            return path
    return fallback


def recorded_test_split(root: Path, rec: Recorded, fallback: Path | None) -> Path | None:
    """The test split the run recorded, from the DVC cache by its md5; else `fallback` (the reproduced
    one)."""
    return cached_output(root, rec.stage_outputs.get(f"split:{TEST_SPLIT}"), fallback)
